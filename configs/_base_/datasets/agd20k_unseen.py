# AGD20K, Unseen split (25 affordances; test objects are absent from training).
# Same pipelines and protocol as the Seen split; only the split folder and class list change
# (AGD20KDataset picks the 25 Unseen classes from `split`).
_base_ = ['./agd20k_seen.py']

split = 'Unseen'
train_dataloader = dict(dataset=dict(split=split))
val_dataloader = dict(dataset=dict(split=split))
test_dataloader = val_dataloader
