from .affordance_visualizer import AffordanceVisualizer
from .overlay import colour_overlay, draw_colour_scale, normalize_heatmap, overlay_heatmap, put_caption, side_by_side

__all__ = [
    'AffordanceVisualizer',
    'colour_overlay',
    'draw_colour_scale',
    'normalize_heatmap',
    'overlay_heatmap',
    'put_caption',
    'side_by_side',
]
