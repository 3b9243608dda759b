"""Blur kernels of Real-ESRGAN's degradation, as numpy arrays: Gaussian, generalized, plateau, sinc.

The functions keep the names and the argument order of BasicSR's `basicsr/data/degradations.py`
(lower-case `gaussian`; BasicSR's `bivariate_Gaussian` spellings are kept as aliases), so options
and code written for BasicSR carry over. What differs: every random function takes an explicit
`rng` (a `numpy.random.Generator` or an int seed) instead of numpy's and Python's global random
state, so the same seed gives the same kernels in any thread and any order; and scipy is not
needed (the sinc kernel's Bessel function is computed here, see `bessel_j1`).

The kernels (`K x K` float64, summing to 1) are functions of a pixel offset `v = (x, y)` from the
centre, `x` along columns and `y` along rows, through the quadratic form `q = v^T S^-1 v` of the
covariance `S = R diag(sig_x^2, sig_y^2) R^T` (R: rotation by `theta`):

- Gaussian: `exp(-q / 2)`;
- generalized Gaussian: `exp(-q^beta / 2)` (beta = 1 is the Gaussian, small beta: long tails,
  large beta: a flat top with a sharp edge);
- plateau: `1 / (1 + q^beta)`;
- circular low-pass (2-D sinc) with cutoff `wc`: `wc J1(wc r) / (2 pi r)`, `r = |v|`.

All of them are point-symmetric (`K(-v) = K(v)`), so applying one by correlation or by
convolution is the same.
"""

import math

import numpy as np

KERNEL_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")


def _generator(rng):
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be a numpy.random.Generator or an int seed, got {rng!r}")


def _check_odd(kernel_size, name):
    if not isinstance(kernel_size, (int, np.integer)) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"{name}: kernel_size must be a positive odd int, got {kernel_size!r}")


def _check_range(value, name, what):
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: {what} must be a (low, high) pair, got {value!r}") from None
    if not low <= high:
        raise ValueError(f"{name}: {what}={value!r} has low > high")
    return low, high


def bessel_j1(x):
    """The Bessel function of the first kind of order 1, J1, elementwise (numpy, no scipy).

    Bessel's integral `J1(x) = 1 / (2 pi) * integral over [0, 2 pi] of cos(t - x sin t) dt`,
    evaluated with the trapezoidal rule on N equally spaced points. For a periodic integrand
    that rule's error is the aliased terms `J_{N-1}(x) - J_{N+1}(x) + ...` (from the
    generating function `exp(i x sin t) = sum_k J_k(x) exp(i k t)`), and `J_n(x)` vanishes
    faster than exponentially once `n` exceeds `x`: with `N = 64 + 2 ceil(max |x|)` the
    result is exact to rounding (about 1e-15 absolute).

    Args:
        x: float or array of floats.

    Returns:
        float64 array of `x`'s shape (a 0-d array for a scalar).

    Example:
    >>> round(float(bessel_j1(1.0)), 12)
    0.440050585745
    """
    x = np.asarray(x, dtype=np.float64)
    if x.size and not np.all(np.isfinite(x)):
        raise ValueError("bessel_j1: x must be finite")
    points = 64 + 2 * int(math.ceil(float(np.max(np.abs(x))))) if x.size else 64
    t = 2.0 * np.pi * np.arange(points) / points
    flat = x.reshape(-1)
    out = np.empty_like(flat)
    step = max(1, (1 << 22) // points)  # bounds the (values, points) temporary to 32 MB
    for start in range(0, flat.size, step):
        chunk = flat[start : start + step, None]
        out[start : start + step] = np.cos(t - chunk * np.sin(t)).mean(axis=1)
    return out.reshape(x.shape)


def sigma_matrix2(sig_x, sig_y, theta):
    """The covariance `R diag(sig_x^2, sig_y^2) R^T` of a Gaussian rotated by `theta` radians.

    Example:
    >>> sigma_matrix2(2.0, 1.0, 0.0)
    array([[4., 0.],
           [0., 1.]])
    """
    d_matrix = np.diag([float(sig_x) ** 2, float(sig_y) ** 2])
    cos, sin = math.cos(theta), math.sin(theta)
    rotation = np.array([[cos, -sin], [sin, cos]])
    return rotation @ d_matrix @ rotation.T


def mesh_grid(kernel_size):
    """Pixel offsets from the kernel centre.

    Returns:
        `(xy, xx, yy)`: `xy` of shape `(K, K, 2)` with `xy[i, j] = (xx[i, j], yy[i, j])`,
        `xx[i, j] = j - K // 2` (column offset) and `yy[i, j] = i - K // 2` (row offset), as
        BasicSR's grid (for even `K` the offsets run from `1 - K / 2` to `K / 2`).

    Example:
    >>> mesh_grid(3)[1]
    array([[-1.,  0.,  1.],
           [-1.,  0.,  1.],
           [-1.,  0.,  1.]])
    """
    axis = np.arange(-kernel_size // 2 + 1.0, kernel_size // 2 + 1.0)
    xx, yy = np.meshgrid(axis, axis)
    return np.stack([xx, yy], axis=-1), xx, yy


def _quadratic_form(sigma_matrix, grid):
    """`v^T S^-1 v` for every offset `v` of the grid."""
    inverse = np.linalg.inv(sigma_matrix)
    return np.einsum("ijk,kl,ijl->ij", grid, inverse, grid)


def pdf2(sigma_matrix, grid):
    """The unnormalised bivariate Gaussian `exp(-v^T S^-1 v / 2)` on a `mesh_grid` grid.

    Example:
    >>> float(pdf2(np.eye(2), mesh_grid(3)[0])[1, 1])
    1.0
    """
    return np.exp(-0.5 * _quadratic_form(sigma_matrix, grid))


def _covariance(sig_x, sig_y, theta, isotropic):
    if isotropic:
        return np.diag([float(sig_x) ** 2] * 2)
    return sigma_matrix2(sig_x, sig_y, theta)


def _normalised(kernel):
    return kernel / np.sum(kernel)


def bivariate_gaussian(kernel_size, sig_x, sig_y, theta, grid=None, isotropic=True):
    """A normalised Gaussian kernel; isotropic (only `sig_x` used) or rotated anisotropic.

    Args:
        kernel_size: int K (odd for a centred kernel).
        sig_x, sig_y: standard deviations along the kernel's own axes, in pixels.
        theta: rotation in radians (anisotropic only).
        grid: optional `mesh_grid(K)[0]`, to save recomputing it.
        isotropic: ignore `sig_y` and `theta`.

    Returns:
        float64 `(K, K)` summing to 1.

    Example:
    >>> k = bivariate_gaussian(21, 2.0, 0.5, math.pi / 4, isotropic=False)
    >>> k.shape, round(float(k.sum()), 12)
    ((21, 21), 1.0)
    """
    if grid is None:
        grid = mesh_grid(kernel_size)[0]
    return _normalised(pdf2(_covariance(sig_x, sig_y, theta, isotropic), grid))


def bivariate_generalized_gaussian(kernel_size, sig_x, sig_y, theta, beta, grid=None, isotropic=True):
    """A normalised generalized Gaussian kernel `exp(-(v^T S^-1 v)^beta / 2)`.

    Args:
        kernel_size, sig_x, sig_y, theta, grid, isotropic: as `bivariate_gaussian`.
        beta: shape; 1 is the Gaussian.

    Returns:
        float64 `(K, K)` summing to 1.

    Example:
    >>> np.allclose(bivariate_generalized_gaussian(9, 1.5, 0, 0, 1.0), bivariate_gaussian(9, 1.5, 0, 0))
    True
    """
    if grid is None:
        grid = mesh_grid(kernel_size)[0]
    q = _quadratic_form(_covariance(sig_x, sig_y, theta, isotropic), grid)
    return _normalised(np.exp(-0.5 * np.power(q, beta)))


def bivariate_plateau(kernel_size, sig_x, sig_y, theta, beta, grid=None, isotropic=True):
    """A normalised plateau kernel `1 / (1 + (v^T S^-1 v)^beta)`.

    Args:
        kernel_size, sig_x, sig_y, theta, grid, isotropic: as `bivariate_gaussian`.
        beta: shape; larger is flatter on top with a steeper fall.

    Returns:
        float64 `(K, K)` summing to 1.

    Example:
    >>> k = bivariate_plateau(7, 1.0, 0, 0, 2.0)
    >>> bool(k[3, 3] == k.max())
    True
    """
    if grid is None:
        grid = mesh_grid(kernel_size)[0]
    q = _quadratic_form(_covariance(sig_x, sig_y, theta, isotropic), grid)
    return _normalised(1.0 / (np.power(q, beta) + 1.0))


def _random_shape(name, rng, sigma_x_range, sigma_y_range, rotation_range, isotropic):
    """(sig_x, sig_y, theta) drawn uniformly from the ranges, as BasicSR draws them."""
    low, high = _check_range(sigma_x_range, name, "sigma_x_range")
    sig_x = rng.uniform(low, high)
    if isotropic:
        return sig_x, sig_x, 0.0
    sig_y = rng.uniform(*_check_range(sigma_y_range, name, "sigma_y_range"))
    theta = rng.uniform(*_check_range(rotation_range, name, "rotation_range"))
    return sig_x, sig_y, theta


def _random_beta(name, rng, beta_range):
    """A shape parameter below or above 1 with equal odds, as BasicSR's: U(low, 1) or U(1, high).

    With BasicSR's plateau default (1, 2), half the draws are exactly 1.
    """
    low, high = _check_range(beta_range, name, "beta_range")
    if not low <= 1.0 <= high:
        raise ValueError(f"{name}: beta_range={beta_range!r} must contain 1 (low <= 1 <= high)")
    if rng.uniform() < 0.5:
        return rng.uniform(low, 1.0)
    return rng.uniform(1.0, high)


def _with_noise(name, kernel, noise_range, rng):
    """Multiplicative uniform noise on each tap, then renormalised (BasicSR's `noise_range`)."""
    if noise_range is not None:
        kernel = kernel * rng.uniform(*_check_range(noise_range, name, "noise_range"), size=kernel.shape)
    return _normalised(kernel)


def random_bivariate_gaussian(
    kernel_size, sigma_x_range, sigma_y_range, rotation_range, noise_range=None, isotropic=True, *, rng
):
    """A Gaussian kernel with sigmas and rotation drawn uniformly from the ranges.

    Args:
        kernel_size: odd int.
        sigma_x_range, sigma_y_range: `(low, high)` in pixels (`sigma_y_range` anisotropic only).
        rotation_range: `(low, high)` radians (anisotropic only).
        noise_range: optional `(low, high)` multiplicative noise on each tap.
        isotropic: one sigma, no rotation.
        rng: `numpy.random.Generator` or int seed.

    Returns:
        float64 `(K, K)` summing to 1.

    Example:
    >>> args = (21, (0.2, 3), (0.2, 3), (-math.pi, math.pi))
    >>> k = random_bivariate_gaussian(*args, isotropic=False, rng=0)
    >>> np.array_equal(k, random_bivariate_gaussian(*args, isotropic=False, rng=0))
    True
    """
    name = "random_bivariate_gaussian"
    _check_odd(kernel_size, name)
    rng = _generator(rng)
    sig_x, sig_y, theta = _random_shape(name, rng, sigma_x_range, sigma_y_range, rotation_range, isotropic)
    kernel = bivariate_gaussian(kernel_size, sig_x, sig_y, theta, isotropic=isotropic)
    return _with_noise(name, kernel, noise_range, rng)


def _random_shaped(kernel_function, kernel_size, sigma_x_range, sigma_y_range, rotation_range, beta_range,
                   noise_range, isotropic, rng):
    """A kernel with a shape parameter (generalized Gaussian, plateau) from random parameters."""
    name = f"random_{kernel_function.__name__}"
    _check_odd(kernel_size, name)
    rng = _generator(rng)
    sig_x, sig_y, theta = _random_shape(name, rng, sigma_x_range, sigma_y_range, rotation_range, isotropic)
    beta = _random_beta(name, rng, beta_range)
    kernel = kernel_function(kernel_size, sig_x, sig_y, theta, beta, isotropic=isotropic)
    return _with_noise(name, kernel, noise_range, rng)


def random_bivariate_generalized_gaussian(
    kernel_size, sigma_x_range, sigma_y_range, rotation_range, beta_range, noise_range=None, isotropic=True,
    *, rng,
):
    """A generalized Gaussian kernel with random sigmas, rotation and shape.

    Args:
        kernel_size, sigma_x_range, sigma_y_range, rotation_range, noise_range, isotropic, rng:
            as `random_bivariate_gaussian`.
        beta_range: `(low, high)` with `low <= 1 <= high`; beta is `U(low, 1)` or `U(1, high)`
            with equal odds (BasicSR's rule).

    Returns:
        float64 `(K, K)` summing to 1.

    Example:
    >>> random_bivariate_generalized_gaussian(7, (0.2, 3), (0.2, 3), (-3, 3), (0.5, 4), rng=1).shape
    (7, 7)
    """
    return _random_shaped(
        bivariate_generalized_gaussian, kernel_size, sigma_x_range, sigma_y_range, rotation_range, beta_range,
        noise_range, isotropic, rng,
    )


def random_bivariate_plateau(
    kernel_size, sigma_x_range, sigma_y_range, rotation_range, beta_range, noise_range=None, isotropic=True,
    *, rng,
):
    """A plateau kernel with random sigmas, rotation and shape.

    Args: as `random_bivariate_generalized_gaussian`.

    Returns:
        float64 `(K, K)` summing to 1.

    Example:
    >>> random_bivariate_plateau(9, (0.2, 3), (0.2, 3), (-3, 3), (1, 2), isotropic=False, rng=2).shape
    (9, 9)
    """
    return _random_shaped(
        bivariate_plateau, kernel_size, sigma_x_range, sigma_y_range, rotation_range, beta_range,
        noise_range, isotropic, rng,
    )


def choose_kernel_type(kernel_list, kernel_prob, rng):
    """One name of `kernel_list` drawn with the (relative) weights `kernel_prob`.

    Example:
    >>> choose_kernel_type(["iso", "aniso"], [1, 0], rng=0)
    'iso'
    """
    if len(kernel_list) != len(kernel_prob) or not kernel_list:
        raise ValueError(
            f"kernel_list ({len(kernel_list)} names) and kernel_prob ({len(kernel_prob)} weights) must "
            f"have the same, non-zero length"
        )
    unknown = [k for k in kernel_list if k not in KERNEL_TYPES]
    if unknown:
        raise ValueError(f"unknown kernel type(s) {unknown}; known: {', '.join(KERNEL_TYPES)}")
    weights = np.asarray(kernel_prob, dtype=np.float64)
    if np.any(weights < 0) or not weights.sum() > 0:
        raise ValueError(f"kernel_prob={list(kernel_prob)} must be non-negative with a positive sum")
    return kernel_list[_generator(rng).choice(len(kernel_list), p=weights / weights.sum())]


def random_mixed_kernels(
    kernel_list,
    kernel_prob,
    kernel_size=21,
    sigma_x_range=(0.6, 5),
    sigma_y_range=(0.6, 5),
    rotation_range=(-math.pi, math.pi),
    betag_range=(0.5, 8),
    betap_range=(0.5, 8),
    noise_range=None,
    *,
    rng,
):
    """A kernel of a type drawn from `kernel_list` with weights `kernel_prob`, random parameters.

    Args:
        kernel_list: names among `"iso"`, `"aniso"`, `"generalized_iso"`, `"generalized_aniso"`,
            `"plateau_iso"`, `"plateau_aniso"`.
        kernel_prob: a weight for each name (normalised here, as `random.choices` does).
        kernel_size: odd int.
        sigma_x_range, sigma_y_range, rotation_range: as `random_bivariate_gaussian`.
        betag_range: shape range of the generalized Gaussian kernels.
        betap_range: shape range of the plateau kernels.
        noise_range: multiplicative tap noise; as in BasicSR, plateau kernels never get it.
        rng: `numpy.random.Generator` or int seed.

    Returns:
        float64 `(K, K)` summing to 1.

    Example:
    >>> k = random_mixed_kernels(list(KERNEL_TYPES), [0.45, 0.25, 0.12, 0.03, 0.12, 0.03], 13, rng=0)
    >>> k.shape
    (13, 13)
    """
    rng = _generator(rng)
    kernel_type = choose_kernel_type(kernel_list, kernel_prob, rng)
    return random_kernel_of_type(
        kernel_type, kernel_size, sigma_x_range, sigma_y_range, rotation_range, betag_range, betap_range,
        noise_range, rng=rng,
    )


def random_kernel_of_type(
    kernel_type, kernel_size, sigma_x_range, sigma_y_range, rotation_range, betag_range, betap_range,
    noise_range=None, *, rng,
):
    """A random kernel of the named type (the second half of `random_mixed_kernels`).

    Example:
    >>> random_kernel_of_type("plateau_iso", 7, (1, 2), (1, 2), (0, 1), (0.5, 4), (1, 2), rng=0).shape
    (7, 7)
    """
    rng = _generator(rng)
    isotropic = kernel_type.endswith("_iso") or kernel_type == "iso"
    shape_args = (kernel_size, sigma_x_range, sigma_y_range, rotation_range)
    if kernel_type in ("iso", "aniso"):
        return random_bivariate_gaussian(*shape_args, noise_range, isotropic, rng=rng)
    if kernel_type in ("generalized_iso", "generalized_aniso"):
        return random_bivariate_generalized_gaussian(
            *shape_args, betag_range, noise_range, isotropic, rng=rng
        )
    if kernel_type in ("plateau_iso", "plateau_aniso"):
        return random_bivariate_plateau(*shape_args, betap_range, None, isotropic, rng=rng)
    raise ValueError(f"unknown kernel type {kernel_type!r}; known: {', '.join(KERNEL_TYPES)}")


def circular_lowpass_kernel(cutoff, kernel_size, pad_to=0):
    """The 2-D sinc (circularly symmetric ideal low-pass) kernel with cutoff `cutoff` radians.

    `K(v) = cutoff J1(cutoff |v|) / (2 pi |v|)` (the inverse Fourier transform of a disc of
    radius `cutoff`), `cutoff^2 / (4 pi)` at the centre (the limit), normalised to sum 1.
    Blurring with it makes the ringing and overshoot of over-sharpened and JPEG images.

    Args:
        cutoff: float in radians per pixel; pi keeps all frequencies a pixel grid has.
        kernel_size: odd int.
        pad_to: zero-pad the kernel to this odd size (0 or not larger: no padding).

    Returns:
        float64 `(K, K)` (or `(pad_to, pad_to)`) summing to 1.

    Example:
    >>> k = circular_lowpass_kernel(math.pi / 3, 7, pad_to=21)
    >>> k.shape, round(float(k.sum()), 12)
    ((21, 21), 1.0)
    """
    name = "circular_lowpass_kernel"
    _check_odd(kernel_size, name)
    if pad_to and (pad_to % 2 == 0 or pad_to < 0):
        raise ValueError(f"{name}: pad_to must be 0 or an odd int, got {pad_to!r}")
    if not cutoff > 0:
        raise ValueError(f"{name}: cutoff must be positive, got {cutoff!r}")
    _, xx, yy = mesh_grid(kernel_size)
    radius = np.hypot(xx, yy)
    centre = kernel_size // 2
    radius[centre, centre] = 1.0  # replaced below; avoids dividing by zero
    kernel = cutoff * bessel_j1(cutoff * radius) / (2.0 * np.pi * radius)
    kernel[centre, centre] = cutoff**2 / (4.0 * np.pi)
    kernel = _normalised(kernel)
    if pad_to > kernel_size:
        pad = (pad_to - kernel_size) // 2
        kernel = np.pad(kernel, pad)
    return kernel


# BasicSR's spellings (its random functions differ only by the `rng` keyword added here).
bivariate_Gaussian = bivariate_gaussian  # noqa: N816
bivariate_generalized_Gaussian = bivariate_generalized_gaussian  # noqa: N816
random_bivariate_Gaussian = random_bivariate_gaussian  # noqa: N816
random_bivariate_generalized_Gaussian = random_bivariate_generalized_gaussian  # noqa: N816
