"""A web page for affordance grounding: upload a photo, pick an affordance (or the top k), see where.

The page (Gradio, an optional dependency: ``pip install -r requirements/optional.txt``) shows, for each
returned affordance, the heatmap overlay with its colour scale (the picture ``tools/infer.py`` writes as
``_overlay.jpg``, here lossless PNG), the region (mask, box, peak) of its heatmap, a table of the regions, every
class's probability, and the JSON ``tools/infer.py`` writes for the same image, to view and to download. The
numbers come from one code path: :func:`looptrans.apis.load_image`, :func:`looptrans.apis.inference_affordance`
and ``AffordanceResult.to_dict()`` (:func:`looptrans.apis.result_json`), called as ``tools/infer.py`` calls them.

Three example pictures are drawn at start-up by the synthetic-data generator (``looptrans.testing``): objects
of the quick-start dataset, which the quick-start model has learned.

An upload that cannot be used (not an image, 0 pixels, more than ``--max-pixels``, undecodable) is answered with
a message on the page, and the server goes on serving; what the decoder converts (CMYK, 16-bit, alpha, an
EXIF rotation that is not applied) is said on the page. The server listens on 127.0.0.1 unless ``--host`` says
otherwise, sends no analytics, and the page loads nothing from outside the server (fonts included).

Examples::

    python tools/web_demo.py configs/looptrans_synthetic.py work_dirs/looptrans_synthetic/iter_200.pth
    python tools/web_demo.py configs/looptrans_agd20k.py epoch_15.pth --port 7861 --device cuda:0
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import os.path as osp
import shutil
import signal
import sys
import tempfile
import time
import traceback
from typing import Any, List, Optional, Sequence, Tuple

import cv2
import mmcv
import numpy as np
from mmengine.config import DictAction

from looptrans.apis import (
    IMAGE_EXTENSIONS,
    AffordanceResult,
    InferencePipeline,
    inference_affordance,
    init_model,
    load_image,
    resolve_affordances,
)
from looptrans.apis.inference import AffordanceRegion
from looptrans.apis.serving import MAX_IMAGE_PIXELS, inspect_image_file, overlay_picture, result_json
from looptrans.utils.cli import positive_int, threshold_float, unit_float
from looptrans.visualization import put_caption

#: The choice that asks for each image's k most probable affordances instead of one named affordance.
TOP_K = 'top-k'
#: Pictures wider or taller than this are shown shrunk (INTER_AREA); the JSON stays in the image's pixels.
DISPLAY_MAX_SIDE = 1280
#: Result files (the JSON to download) older than this are removed from the server's folder.
KEEP_RESULTS_S = 3600
#: What ``pip`` needs when Gradio is missing (one line on stderr, exit status 2).
INSTALL_HINT = (
    'error: tools/web_demo.py needs gradio, an optional dependency: install it with '
    '`.venv/bin/pip install -r requirements/optional.txt` (or `bash tools/install/setup_env.sh --optional`)'
)
#: (affordance, object) of the example pictures drawn at start-up; file name ``<object>.png``.
EXAMPLES = (('hold', 'cup'), ('cut_with', 'knife'), ('pour', 'kettle'))


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Web page for affordance heatmaps (Gradio)')
    parser.add_argument('config')
    parser.add_argument('checkpoint', help='a .pth checkpoint of this config (loaded strictly, as tools/infer.py)')
    parser.add_argument('--host', default='127.0.0.1', help='address to listen on (default 127.0.0.1: this machine)')
    parser.add_argument('--port', type=int, default=7860, help='port to listen on (default 7860)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument(
        '--threshold',
        type=threshold_float,
        default=0.5,
        help='relative mask threshold of the regions, as tools/infer.py --threshold (default 0.5)',
    )
    parser.add_argument('--alpha', type=unit_float, default=0.5, help='heatmap opacity in the overlays, in [0, 1]')
    parser.add_argument(
        '--max-pixels',
        type=positive_int,
        default=MAX_IMAGE_PIXELS,
        help=f'largest image accepted, in pixels (default {MAX_IMAGE_PIXELS:,}); larger uploads are refused',
    )
    parser.add_argument(
        '--max-file-mb', type=positive_int, default=50, help='largest upload accepted, in MB (default 50)'
    )
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings')
    return parser.parse_args(argv)


def import_gradio() -> Any:
    """The ``gradio`` module, or None when it cannot be imported (it is an optional dependency).

    Gradio is told first to send no usage statistics and make no version check (the environment is read at
    import), and the Hugging Face Hub client to send no telemetry.
    """
    os.environ['GRADIO_ANALYTICS_ENABLED'] = 'False'
    os.environ.setdefault('HF_HUB_DISABLE_TELEMETRY', '1')
    try:
        import gradio
    except ImportError:
        return None
    return gradio


def make_examples(folder: str, seed: int = 0) -> List[str]:
    """Draw :data:`EXAMPLES` with the synthetic-data generator into ``folder`` as PNG; return their paths."""
    from looptrans.testing.synthetic_agd20k import make_rng, render_egocentric

    os.makedirs(folder, exist_ok=True)
    paths = []
    for affordance, obj in EXAMPLES:
        image, _ = render_egocentric(affordance, obj, make_rng(seed, 'web_demo', affordance, obj), (256, 320))
        path = osp.join(folder, f'{obj}.png')
        cv2.imwrite(path, image)
        paths.append(path)
    return paths


def shrink_for_display(picture: np.ndarray, max_side: int = DISPLAY_MAX_SIDE) -> np.ndarray:
    """``picture`` as is when it fits in ``max_side`` x ``max_side``, else shrunk (INTER_AREA) to fit."""
    h, w = picture.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return picture
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(picture, size, interpolation=cv2.INTER_AREA)


def regions_picture(image_rgb: np.ndarray, region: AffordanceRegion, caption: str) -> np.ndarray:
    """The image with one heatmap's region drawn on it: the mask tinted green with its largest contour in
    yellow, the box in red, the peak as a white cross; ``caption`` at the top."""
    out = image_rgb.copy()
    h, w = out.shape[:2]
    thick = max(1, round(min(h, w) / 200))
    tint = np.array((0, 255, 0), np.float32)
    out[region.mask] = (0.55 * out[region.mask] + 0.45 * tint).astype(np.uint8)
    if region.polygon:
        cv2.polylines(out, [np.asarray(region.polygon, np.int32)], True, (255, 230, 0), thick, cv2.LINE_AA)
    if region.bbox is not None:
        x0, y0, x1, y1 = region.bbox
        cv2.rectangle(out, (x0, y0), (x1, y1), (255, 40, 40), thick)
    size = max(9, round(min(h, w) / 12))
    cv2.drawMarker(out, tuple(region.peak), (0, 0, 0), cv2.MARKER_CROSS, size, thick + 2)
    cv2.drawMarker(out, tuple(region.peak), (255, 255, 255), cv2.MARKER_CROSS, size, thick)
    return put_caption(out, caption)


def regions_table(result: AffordanceResult) -> str:
    """A Markdown table: per returned affordance its probability, peak, peak score, box, mask area, saturation."""
    h, w = result.ori_shape
    rows = [
        '| affordance | probability | peak (x, y) | peak score | box (x0, y0, x1, y1) | mask area | saturated |',
        '| --- | ---: | --- | ---: | --- | ---: | --- |',
    ]
    for name in result.affordances:
        region = result.regions[name]
        box = 'none' if region.bbox is None else str(tuple(region.bbox))
        rows.append(
            f'| {name} | {result.probs[name]:.4f} | {tuple(region.peak)} | {region.peak_score:.4f} | {box} | '
            f'{region.area} px ({100 * region.area / (h * w):.1f} %) | '
            f'{"yes: high almost everywhere, localises nothing" if region.saturated else "no"} |'
        )
    return '\n'.join(rows)


def prune_old(folder: str, max_age_s: float = KEEP_RESULTS_S) -> None:
    """Remove the sub-folders of ``folder`` last changed more than ``max_age_s`` ago (old result files)."""
    now = time.time()
    for entry in os.scandir(folder):
        try:
            if entry.is_dir() and now - entry.stat().st_mtime > max_age_s:
                shutil.rmtree(entry.path, ignore_errors=True)
        except OSError:
            pass


class DemoAnalyser:
    """The page's one action: a file path, an affordance (or :data:`TOP_K`) and k -> the page's outputs.

    Outputs, in order: the status line (Markdown), the pictures (a list of ``(RGB array, caption)``: per
    returned affordance its heatmap overlay, then its region picture), the regions table (Markdown), every
    class's probability (dict), the path of the JSON file to download, and the JSON itself (dict). On a refused
    upload: the message and empty outputs.
    """

    def __init__(self, model, work_dir: str, threshold: float = 0.5, alpha: float = 0.5, max_pixels: int = 0):
        self.model = model
        self.classes: Tuple[str, ...] = tuple(model.dataset_meta['classes'])
        self.work_dir = work_dir
        self.threshold = threshold
        self.alpha = alpha
        self.max_pixels = max_pixels or MAX_IMAGE_PIXELS
        self.runs = 0  # numbers each answer, so that a person (and a test) sees that the page has been updated

    @staticmethod
    def _failure(message: str) -> tuple:
        return message, None, '', None, None, None

    def __call__(self, path: Optional[str], choice: Optional[str], k: Optional[float]) -> tuple:
        self.runs += 1
        run = f'Run {self.runs}: '
        if not path:
            return self._failure(f'{run}**Upload a photo, or pick one of the examples, first.**')
        name = osp.basename(path)
        try:
            status, *outputs = self._analyse(path, name, choice, k)
            return (run + status, *outputs)
        except (ValueError, OSError) as err:  # a file that cannot be used, a choice that is not offered
            reason = str(err).replace(repr(path), repr(name)).replace(path, name)
            return self._failure(f'{run}**Cannot use `{name}`:** {reason}')
        except Exception as err:  # noqa: BLE001 - a bug must not take the page down; the log has the trace
            traceback.print_exc()
            why = f'{type(err).__name__}: {err}'
            return self._failure(f'{run}**Internal error on `{name}`:** {why} (see the server log)')

    def _analyse(self, path: str, name: str, choice: Optional[str], k: Optional[float]) -> tuple:
        info = inspect_image_file(path, self.max_pixels)
        image_bgr = load_image(path)[0]  # the pixels tools/infer.py reads
        if choice == TOP_K:
            top_k = int(k or 0)
            if not 1 <= top_k <= len(self.classes):
                raise ValueError(f'k must be between 1 and {len(self.classes)}, got {k!r}')
            affordances = None
        else:
            top_k = None
            affordances = resolve_affordances(self.model, [choice])
        # exactly tools/infer.py's call and JSON (one image: a batch of one)
        result = inference_affordance(self.model, [image_bgr], affordances, 8, top_k=top_k, threshold=self.threshold)
        result = result[0]
        result.image_path = name
        text = result_json(result)

        prune_old(self.work_dir)
        out_dir = tempfile.mkdtemp(dir=self.work_dir)
        json_path = osp.join(out_dir, osp.splitext(name)[0] + '.json')
        with open(json_path, 'w') as f:
            f.write(text)

        image_rgb = mmcv.bgr2rgb(image_bgr)
        pictures = []
        for aff in result.affordances:
            overlay = overlay_picture(image_rgb, result.heatmaps[aff], aff, self.alpha)
            pictures.append((shrink_for_display(overlay), f'{aff}: p = {result.probs[aff]:.3f}, heatmap'))
            region = regions_picture(image_rgb, result.regions[aff], aff)
            pictures.append((shrink_for_display(region), f'{aff}: mask, box, peak'))
        h, w = result.ori_shape
        asked = f'top {top_k} of {len(self.classes)} affordances' if top_k else f'affordance `{choice}`'
        lines = [f'**done:** `{name}` ({w} x {h} px), {asked}, mask threshold {self.threshold:g}.']
        if max(h, w) > DISPLAY_MAX_SIDE:
            lines.append(f'Pictures are shown shrunk to {DISPLAY_MAX_SIDE} px; the numbers are in the image\'s pixels.')
        lines += [f'Note: {note}.' for note in info.notes]
        status = '  \n'.join(lines)
        return status, pictures, regions_table(result), dict(result.probs), json_path, json.loads(text)


def build_demo(gr: Any, analyse: DemoAnalyser, examples: Sequence[str], title: str) -> Any:
    """The page: inputs on the left (photo, examples, affordance, k, button), results on the right."""
    classes = list(analyse.classes)
    with gr.Blocks(title='LoopTrans affordance grounding', analytics_enabled=False, delete_cache=(1800, 3600)) as demo:
        gr.Markdown(f'## LoopTrans affordance grounding\n{title}')
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                photo = gr.File(
                    label='Photo', file_types=list(IMAGE_EXTENSIONS), type='filepath', elem_id='photo', height=120
                )
                if examples:
                    gr.Examples(examples=[[p] for p in examples], inputs=[photo], label='Examples (drawn at start-up)')
                choice = gr.Dropdown(
                    [TOP_K, *classes],
                    value=TOP_K,
                    label=f'Affordance (one of the model\'s {len(classes)}, or "{TOP_K}")',
                    elem_id='affordance',
                )
                k = gr.Slider(1, len(classes), value=min(3, len(classes)), step=1, label='k (for top-k)', elem_id='k')
                run = gr.Button('Find affordances', variant='primary', elem_id='run')
            with gr.Column(scale=2):
                status = gr.Markdown(
                    'Upload a photo or pick an example, then press **Find affordances**.', elem_id='status'
                )
                gr.Markdown(
                    'Per affordance: **heatmap overlay** (colour scale: max at the top, min at the bottom) | '
                    '**region**: mask (green, largest contour yellow), box (red), peak (white cross)'
                )
                pictures = gr.Gallery(
                    label='Pictures',
                    show_label=False,
                    format='png',
                    columns=2,
                    fit_columns=False,
                    object_fit='contain',
                    elem_id='pictures',
                )
                table = gr.Markdown(elem_id='regions-table')
                probs = gr.Label(
                    label='Class probabilities (softmax of the image logits)',
                    num_top_classes=len(classes),
                    elem_id='probs',
                )
                json_file = gr.File(label='JSON, as tools/infer.py writes it (download)', elem_id='json-file')
                json_view = gr.JSON(label='JSON', elem_id='json-view')
        run.click(
            analyse,
            [photo, choice, k],
            [status, pictures, table, probs, json_file, json_view],
            concurrency_limit=1,
            api_name='analyse',
        )
    return demo


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM as Ctrl-C: Gradio then closes the server and the start-up files are removed (atexit)."""
    raise KeyboardInterrupt


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Load the model, draw the examples, serve the page until interrupted; return the exit status."""
    args = parse_args(argv)
    gr = import_gradio()
    if gr is None:
        print(INSTALL_HINT, file=sys.stderr)
        return 2
    try:
        model = init_model(args.config, args.checkpoint, device=args.device, cfg_options=args.cfg_options)
        InferencePipeline(model.cfg).check()  # a test pipeline that cannot serve: refused before serving
    except (ImportError, OSError, ValueError, RuntimeError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    work_dir = tempfile.mkdtemp(prefix='looptrans_web_demo_')
    atexit.register(shutil.rmtree, work_dir, ignore_errors=True)
    examples = make_examples(osp.join(work_dir, 'examples'))
    results = osp.join(work_dir, 'results')
    os.makedirs(results)
    analyse = DemoAnalyser(model, results, args.threshold, args.alpha, args.max_pixels)
    title = (
        f'Model: `{osp.basename(args.config)}` + `{osp.basename(args.checkpoint)}` on {args.device}, '
        f'{len(analyse.classes)} affordances. Photos are used as stored (EXIF rotation not applied), as '
        '`tools/infer.py` uses them.'
    )
    demo = build_demo(gr, analyse, examples, title)
    demo.queue(max_size=32)
    signal.signal(signal.SIGTERM, _interrupt)
    demo.launch(
        server_name=args.host,
        server_port=args.port,
        share=False,
        max_file_size=f'{args.max_file_mb}mb',
        footer_links=[],
        allowed_paths=[osp.join(work_dir, 'examples')],
        show_error=True,
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())
