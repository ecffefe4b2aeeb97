from .affordance_visualizer import AffordanceVisualizer
from .overlay import colorize_heatmap, draw_colour_scale, normalize_heatmap, overlay_heatmap, side_by_side

__all__ = [
    'AffordanceVisualizer', 'colorize_heatmap', 'draw_colour_scale', 'normalize_heatmap', 'overlay_heatmap',
    'side_by_side'
]
