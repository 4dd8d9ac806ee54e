"""07 · im2col and fold: convolution as one matrix multiply.

GENERATED from the cells marked ``#| export`` in notebooks/07_im2col_and_fold.ipynb by
``python -m course_utils.instructor.grading export`` (``make export``): edit the notebook, not
this file.
``tests/test_grading_export.py`` fails when this file is stale.
"""

# Given code.
import numpy as np


def _require_ndim(name: str, array: np.ndarray, ndim: int, layout: str) -> None:
    if np.ndim(array) != ndim:
        raise ValueError(f"{name} must be a {ndim}-d array {layout}, got shape "
                         f"{np.shape(array)}; reshape it (e.g. x[None] adds a batch axis)")


def _require_positive_int(name: str, value: int, minimum: int = 1) -> None:
    if not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _pad(x: np.ndarray, pad: int) -> np.ndarray:
    """Zero-pad the two spatial axes of x (N, C, H, W) by ``pad`` on every side."""
    return np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad))) if pad else x


def _check_conv_inputs(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> None:
    _require_ndim("x", x, 4, "(N, C, H, W)")
    _require_ndim("w", w, 4, "(F, C, KH, KW)")
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"x has {x.shape[1]} channels but w expects {w.shape[1]} "
                         f"(x {x.shape}, w {w.shape})")
    if np.shape(b) != (w.shape[0],):
        raise ValueError(f"b must have shape ({w.shape[0]},) (one bias per filter), "
                         f"got {np.shape(b)}")


def conv_output_size(size: int, kernel: int, stride: int = 1, pad: int = 0) -> int:
    """Output length along one axis: ``(size + 2 * pad - kernel) // stride + 1``.

    Raises ValueError when the kernel does not fit into the padded input.
    """
    _require_positive_int("stride", stride)
    _require_positive_int("pad", pad, minimum=0)
    _require_positive_int("kernel size", kernel)
    if kernel > size + 2 * pad:
        raise ValueError(f"kernel size {kernel} is larger than the padded input "
                         f"({size} + 2*{pad}); use a smaller kernel or more padding")
    return (size + 2 * pad - kernel) // stride + 1


def im2col_matrix(x: np.ndarray, kh: int, kw: int, stride: int = 1,
                  pad: int = 0) -> np.ndarray:
    """All receptive fields of a batch as one matrix, the layout for a single big GEMM.

    Inputs: x (N, C, H, W); kernel kh x kw.
    Returns cols (C*KH*KW, N*HOUT*WOUT), C-contiguous: row ``(c, i, j)`` holds
    ``x[n, c, i + stride*ho, j + stride*wo]`` for every ``(n, ho, wo)``.
    """
    _require_ndim("x", x, 4, "(N, C, H, W)")
    n, c, h, w = x.shape
    hout = conv_output_size(h, kh, stride, pad)
    wout = conv_output_size(w, kw, stride, pad)
    padded = _pad(x, pad)
    cols = np.empty((c, kh, kw, n, hout, wout), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            # kernel offset (i, j) sees pixel (i + stride*ho, j + stride*wo) at output (ho, wo):
            # one strided slice per offset, copied as whole rows (faster than gathering windows)
            cols[:, i, j] = padded[:, :, i:i + stride * hout:stride,
                                   j:j + stride * wout:stride].transpose(1, 0, 2, 3)
    return cols.reshape(c * kh * kw, n * hout * wout)


def im2col(x: np.ndarray, kh: int, kw: int, stride: int = 1, pad: int = 0) -> np.ndarray:
    """Unfold each image into columns, equal to ``torch.nn.functional.unfold``.

    Inputs: x (N, C, H, W); kernel kh x kw.
    Returns cols (N, C*KH*KW, HOUT*WOUT): column ``l`` of image ``n`` is the flattened
    receptive field at output position ``l`` (row-major over HOUT x WOUT).
    """
    n = np.shape(x)[0] if np.ndim(x) == 4 else 0
    matrix = im2col_matrix(x, kh, kw, stride, pad)
    return matrix.reshape(matrix.shape[0], n, -1).transpose(1, 0, 2)


def col2im_matrix(cols: np.ndarray, x_shape: tuple[int, int, int, int], kh: int, kw: int,
                  stride: int = 1, pad: int = 0) -> np.ndarray:
    """Fold a ``im2col_matrix`` back into an image, summing where windows overlap.

    Inputs: cols (C*KH*KW, N*HOUT*WOUT); x_shape (N, C, H, W) of the image it came from.
    Returns x (N, C, H, W). Each input pixel receives the sum of every column entry that was
    copied from it, which is exactly the gradient of im2col (a pixel used k times gets k terms).
    """
    n, c, h, w = x_shape
    hout = conv_output_size(h, kh, stride, pad)
    wout = conv_output_size(w, kw, stride, pad)
    if cols.shape != (c * kh * kw, n * hout * wout):
        raise ValueError(f"cols has shape {cols.shape}, expected {(c * kh * kw, n * hout * wout)} "
                         f"for x_shape={tuple(x_shape)}, kernel {kh}x{kw}, stride {stride}, "
                         f"pad {pad}")
    blocks = cols.reshape(c, kh, kw, n, hout, wout)
    padded = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            # kernel offset (i, j) saw the pixels at i + stride*ho, j + stride*wo
            padded[:, :, i:i + stride * hout:stride, j:j + stride * wout:stride] += (
                blocks[:, i, j].transpose(1, 0, 2, 3))
    return padded[:, :, pad:pad + h, pad:pad + w]


def col2im(cols: np.ndarray, x_shape: tuple[int, int, int, int], kh: int, kw: int,
           stride: int = 1, pad: int = 0) -> np.ndarray:
    """Fold columns back into images, equal to ``torch.nn.functional.fold``.

    Inputs: cols (N, C*KH*KW, HOUT*WOUT); x_shape (N, C, H, W).
    Returns x (N, C, H, W), overlapping entries summed.
    """
    _require_ndim("cols", cols, 3, "(N, C*KH*KW, HOUT*WOUT)")
    matrix = cols.transpose(1, 0, 2).reshape(cols.shape[1], -1)
    return col2im_matrix(matrix, x_shape, kh, kw, stride, pad)


def conv_forward_loops(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1,
                       pad: int = 0) -> np.ndarray:
    """The definition, written as loops: ``out[n,f,i,j] = sum(window * w[f]) + b[f]``.

    Inputs: x (N, C, H, W), w (F, C, KH, KW), b (F,).
    Returns out (N, F, HOUT, WOUT). Slow; the reference the fast version is checked against.
    """
    _check_conv_inputs(x, w, b)
    n = x.shape[0]
    f, _, kh, kw = w.shape
    hout = conv_output_size(x.shape[2], kh, stride, pad)
    wout = conv_output_size(x.shape[3], kw, stride, pad)
    padded = _pad(x, pad)
    out = np.zeros((n, f, hout, wout), dtype=np.result_type(x, w))
    for image in range(n):
        for filt in range(f):
            for i in range(hout):
                for j in range(wout):
                    top, left = i * stride, j * stride
                    window = padded[image, :, top:top + kh, left:left + kw]  # (C, KH, KW)
                    out[image, filt, i, j] = np.sum(window * w[filt]) + b[filt]
    return out


def conv_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1,
                 pad: int = 0) -> tuple[np.ndarray, tuple]:
    """Convolution (cross-correlation, as torch's conv2d) via im2col and one matrix multiply.

    Inputs: x (N, C, H, W), w (F, C, KH, KW), b (F,).
    Returns out (N, F, HOUT, WOUT) and cache (x shape, cols, w, stride, pad).
    """
    _check_conv_inputs(x, w, b)
    n = x.shape[0]
    f, _, kh, kw = w.shape
    cols = im2col_matrix(x, kh, kw, stride, pad)  # (C*KH*KW, N*HOUT*WOUT)
    hout = conv_output_size(x.shape[2], kh, stride, pad)
    wout = conv_output_size(x.shape[3], kw, stride, pad)
    # One GEMM for the whole batch: (F, C*KH*KW) @ (C*KH*KW, N*HOUT*WOUT)
    out = w.reshape(f, -1) @ cols
    out += b[:, None]  # in place: no second (F, N*HOUT*WOUT) array
    out = out.reshape(f, n, hout, wout).transpose(1, 0, 2, 3)
    return np.ascontiguousarray(out), (x.shape, cols, w, stride, pad)


def conv_backward(dout: np.ndarray,
                  cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of ``conv_forward``, through col2im.

    Inputs: dout (N, F, HOUT, WOUT).
    Returns dx (N, C, H, W), dw (F, C, KH, KW), db (F,).
    """
    x_shape, cols, w, stride, pad = cache
    f, _, kh, kw = w.shape
    dout_matrix = dout.transpose(1, 0, 2, 3).reshape(f, -1)  # (F, N*HOUT*WOUT), as in forward
    dw = (dout_matrix @ cols.T).reshape(w.shape)  # out = W @ cols, so dW = dout @ cols^T
    db = dout.sum(axis=(0, 2, 3))
    dcols = w.reshape(f, -1).T @ dout_matrix  # and dcols = W^T @ dout
    dx = col2im_matrix(dcols, x_shape, kh, kw, stride, pad)  # each pixel sums its copies
    return dx, dw, db
