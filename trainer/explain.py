"""Why the model decided: integrated gradients over the pixels the network sees, drawn as a heat map.

Integrated gradients (Sundararajan et al. 2017) rather than Grad-CAM, for two reasons (docs/explanations.md):
at the recipe's image sizes (96-224 px) the backbones' last convolution is 3x3 to 7x7 cells, so Grad-CAM's map
is a few blocks wide; and IG needs only the exported model's input pixels and output probabilities, which a
SavedModel gives back differentiable (serving_contract.PIXELS_FUNCTION / PIXEL_PROBABILITIES_FUNCTION), while
the backbone's inner layers are not restorable from it. One module for `predict --explain` and the report.
"""

from __future__ import annotations

import io
from typing import Callable, List, NamedTuple, Optional, Sequence

import numpy as np

from tfx_image_finetune.serving_contract import PIXEL_PROBABILITIES_FUNCTION, PIXELS_FUNCTION

STEPS = 16  # Riemann steps from each baseline to the image (2 x STEPS images: the batch of one gradient call)
BLUR_FRACTION = 1 / 48  # the heat map's Gaussian blur, as a fraction of the image side: pixel noise -> regions


class Explanation(NamedTuple):
    """The explained class, its probability, the heat map ([size, size] in [0, 1]) and the overlay as PNG."""
    class_id: int
    probability: float
    heat: np.ndarray
    overlay_png: bytes


class NotExplainableError(ValueError):
    """A model without the explanation functions (exported before they existed)."""


def integrated_gradients(probabilities_of_pixels: Callable, pixels: np.ndarray, class_id: int,
                         steps: int = STEPS) -> np.ndarray:
    """Attributions [size, size, 3] of class `class_id`'s probability to `pixels` ([size, size, 3] in [-1, 1]):
    (pixels - baseline) x the mean gradient along the straight path between them, averaged over a black and a
    white baseline (as Vertex AI's XRAI does): a model that already sees the class in one of them (attributions
    near 0 from that one, by IG's completeness) is still explained by the other."""
    import tensorflow as tf

    image = tf.convert_to_tensor(pixels, tf.float32)
    baselines = tf.stack([-tf.ones_like(image), tf.ones_like(image)])  # black and white in the network's [-1, 1]
    alphas = tf.reshape((tf.range(steps, dtype=tf.float32) + 0.5) / steps, [1, -1, 1, 1, 1])  # midpoint rule
    path = baselines[:, None] + alphas * (image[None, None] - baselines[:, None])  # [2, steps, size, size, 3]
    flat = tf.reshape(path, [-1, *image.shape])
    with tf.GradientTape() as tape:
        tape.watch(flat)
        chosen = probabilities_of_pixels(flat)[:, class_id]
    gradients = tf.reshape(tape.gradient(chosen, flat), path.shape)
    return tf.reduce_mean((image[None] - baselines) * tf.reduce_mean(gradients, axis=1), axis=0).numpy()


def heat_map(attributions: np.ndarray) -> np.ndarray:
    """[size, size] in [0, 1]: absolute attribution summed over colours, blurred, divided by its maximum."""
    from scipy.ndimage import gaussian_filter

    heat = gaussian_filter(np.abs(attributions).sum(axis=-1), sigma=max(1.0, attributions.shape[0] * BLUR_FRACTION))
    return heat / heat.max() if heat.max() > 0 else heat


def overlay_png(pixels: np.ndarray, heat: np.ndarray) -> bytes:
    """The image (from [-1, 1]) with the heat map over it: inferno colours, opaque where the heat is high, the
    top 1% at full strength (attributions are heavy-tailed: scaled by the maximum, most of the map would fade)."""
    from matplotlib import colormaps
    from PIL import Image

    top = np.percentile(heat, 99)
    heat = np.clip(heat / top, 0.0, 1.0) if top > 0 else heat
    image = (np.asarray(pixels, np.float32) + 1.0) * 127.5
    colours = colormaps["inferno"](heat)[..., :3] * 255.0
    alpha = 0.75 * heat[..., None]
    blended = np.clip((1.0 - alpha) * image + alpha * colours, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(blended).save(buf, format="PNG")
    return buf.getvalue()


def explain_pixels(probabilities_of_pixels: Callable, pixels: np.ndarray, class_id: Optional[int] = None,
                   steps: int = STEPS) -> Explanation:
    """The explanation of one image given as the network's input; `class_id` None: the predicted class."""
    probabilities = np.asarray(probabilities_of_pixels(np.asarray(pixels, np.float32)[None]))[0]
    class_id = int(np.argmax(probabilities)) if class_id is None else class_id
    heat = heat_map(integrated_gradients(probabilities_of_pixels, pixels, class_id, steps))
    return Explanation(class_id, float(probabilities[class_id]), heat, overlay_png(pixels, heat))


def explainable(loaded) -> bool:
    """Whether a tf.saved_model.load'ed export has the explanation functions."""
    return hasattr(loaded, PIXELS_FUNCTION) and hasattr(loaded, PIXEL_PROBABILITIES_FUNCTION)


def explain_images(loaded, images: Sequence[bytes], class_ids: Optional[Sequence[Optional[int]]] = None,
                   steps: int = STEPS) -> List[Explanation]:
    """Explanations of encoded images by an exported model (tf.saved_model.load'ed); each of the predicted class
    unless `class_ids` names one. Raises NotExplainableError for a model exported without the functions."""
    import tensorflow as tf

    if not explainable(loaded):
        raise NotExplainableError(
            f"the model has no {PIXELS_FUNCTION!r} / {PIXEL_PROBABILITIES_FUNCTION!r} functions (exported before "
            "explanations existed): train it again to explain it")
    to_pixels, probabilities_of_pixels = getattr(loaded, PIXELS_FUNCTION), getattr(loaded, PIXEL_PROBABILITIES_FUNCTION)
    class_ids = list(class_ids) if class_ids is not None else [None] * len(images)
    out = []
    for image, class_id in zip(images, class_ids):
        pixels = to_pixels(tf.constant([image]))[0].numpy()
        out.append(explain_pixels(probabilities_of_pixels, pixels, class_id, steps))
    return out
