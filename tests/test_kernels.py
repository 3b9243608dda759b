"""Real-ESRGAN's blur kernels against the published formulas, written out independently here."""

import math

import numpy as np
import pytest
import scipy.special

from keras_esrgan.data import kernels as K

CASES = [  # (kernel_size, sig_x, sig_y, theta)
    (21, 3.0, 0.7, 0.6),
    (13, 0.4, 2.5, -2.1),
    (7, 1.2, 1.2, 1.0),
    (9, 2.0, 0.2, math.pi / 2),
]


def rotated_quadratic_form(kernel_size, sig_x, sig_y, theta):
    """v^T S^-1 v with S = R diag(sx^2, sy^2) R^T, from coordinates rotated into the kernel axes.

    R^T v = (x cos t + y sin t, -x sin t + y cos t), so the form is u^2 / sx^2 + w^2 / sy^2:
    no matrix inverse involved. x runs along columns, y along rows, from the centre.
    """
    c = kernel_size // 2
    y, x = np.mgrid[-c : c + 1, -c : c + 1].astype(np.float64)
    u = x * math.cos(theta) + y * math.sin(theta)
    w = -x * math.sin(theta) + y * math.cos(theta)
    return u**2 / sig_x**2 + w**2 / sig_y**2


def normalised(kernel):
    return kernel / kernel.sum()


def test_bessel_j1_against_scipy():
    x = np.concatenate([np.linspace(-60, 60, 24001), [0.0, 1e-9, 3.8317059702075123, 200.5]])
    assert np.max(np.abs(K.bessel_j1(x) - scipy.special.j1(x))) < 1e-12
    assert K.bessel_j1(np.zeros((0,))).shape == (0,)
    assert K.bessel_j1(2.0).shape == ()
    with pytest.raises(ValueError, match="finite"):
        K.bessel_j1([1.0, np.nan])


def test_mesh_grid_and_sigma_matrix():
    xy, xx, yy = K.mesh_grid(5)
    np.testing.assert_array_equal(xx[0], [-2, -1, 0, 1, 2])
    np.testing.assert_array_equal(yy[:, 0], [-2, -1, 0, 1, 2])
    np.testing.assert_array_equal(xy[..., 0], xx)
    np.testing.assert_array_equal(xy[..., 1], yy)
    a, b, t = 2.5**2, 0.5**2, 0.3
    c, s = math.cos(t), math.sin(t)
    expected = [[a * c * c + b * s * s, (a - b) * c * s], [(a - b) * c * s, a * s * s + b * c * c]]
    np.testing.assert_allclose(K.sigma_matrix2(2.5, 0.5, t), expected, rtol=1e-12)


@pytest.mark.parametrize("size,sx,sy,theta", CASES)
def test_gaussian_kernels_equal_the_formula(size, sx, sy, theta):
    q = rotated_quadratic_form(size, sx, sy, theta)
    aniso = K.bivariate_gaussian(size, sx, sy, theta, isotropic=False)
    np.testing.assert_allclose(aniso, normalised(np.exp(-q / 2)), atol=1e-6, rtol=1e-6)
    iso = K.bivariate_gaussian(size, sx, sy, theta)  # sig_y and theta ignored
    q_iso = rotated_quadratic_form(size, sx, sx, 0)
    np.testing.assert_allclose(iso, normalised(np.exp(-q_iso / 2)), atol=1e-6)
    unnormalised = K.pdf2(K.sigma_matrix2(sx, sy, theta), K.mesh_grid(size)[0])
    np.testing.assert_allclose(unnormalised, np.exp(-q / 2), atol=1e-9)
    assert aniso.shape == (size, size) and abs(aniso.sum() - 1) < 1e-12
    # BasicSR's spelling is the same function.
    assert K.bivariate_Gaussian is K.bivariate_gaussian


@pytest.mark.parametrize("size,sx,sy,theta", CASES)
@pytest.mark.parametrize("beta", [0.5, 1.0, 2.7])
def test_generalized_and_plateau_kernels_equal_the_formulas(size, sx, sy, theta, beta):
    q = rotated_quadratic_form(size, sx, sy, theta)
    generalized = K.bivariate_generalized_gaussian(size, sx, sy, theta, beta, isotropic=False)
    np.testing.assert_allclose(generalized, normalised(np.exp(-0.5 * q**beta)), atol=1e-6, rtol=1e-6)
    plateau = K.bivariate_plateau(size, sx, sy, theta, beta, isotropic=False)
    np.testing.assert_allclose(plateau, normalised(1 / (1 + q**beta)), atol=1e-6, rtol=1e-6)
    q_iso = rotated_quadratic_form(size, sx, sx, 0)
    np.testing.assert_allclose(
        K.bivariate_plateau(size, sx, sy, theta, beta), normalised(1 / (1 + q_iso**beta)), atol=1e-6
    )
    for kernel in (generalized, plateau):  # point symmetry: correlation == convolution
        np.testing.assert_allclose(kernel, kernel[::-1, ::-1], atol=1e-15)


@pytest.mark.parametrize("cutoff,size", [(math.pi, 7), (math.pi / 3, 13), (math.pi / 5, 21), (2.0, 9)])
def test_circular_lowpass_equals_closed_form(cutoff, size):
    c = size // 2
    y, x = np.mgrid[-c : c + 1, -c : c + 1].astype(np.float64)
    r = np.sqrt(x * x + y * y)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = cutoff * scipy.special.j1(cutoff * r) / (2 * np.pi * r)
    expected[c, c] = cutoff**2 / (4 * np.pi)  # lim r->0 of cutoff J1(cutoff r) / (2 pi r)
    expected = normalised(expected)
    kernel = K.circular_lowpass_kernel(cutoff, size)
    np.testing.assert_allclose(kernel, expected, atol=1e-10)
    padded = K.circular_lowpass_kernel(cutoff, size, pad_to=23)
    assert padded.shape == (23, 23)
    pad = (23 - size) // 2
    np.testing.assert_array_equal(padded[pad : pad + size, pad : pad + size], kernel)
    assert padded.sum() == pytest.approx(1.0) and np.count_nonzero(padded) == size * size


def test_random_kernels_draw_their_parameters_in_basicsr_order():
    """Same Generator state -> the parameters BasicSR would draw, in its order, from the ranges."""
    sx_r, sy_r, rot_r, beta_r = (0.2, 3.0), (0.4, 2.0), (-math.pi, math.pi), (0.5, 4.0)
    draws = np.random.default_rng(11)
    sx, sy, theta = draws.uniform(*sx_r), draws.uniform(*sy_r), draws.uniform(*rot_r)
    np.testing.assert_allclose(
        K.random_bivariate_gaussian(21, sx_r, sy_r, rot_r, isotropic=False, rng=np.random.default_rng(11)),
        K.bivariate_gaussian(21, sx, sy, theta, isotropic=False),
    )
    draws = np.random.default_rng(12)
    sx = draws.uniform(*sx_r)
    beta = draws.uniform(beta_r[0], 1) if draws.uniform() < 0.5 else draws.uniform(1, beta_r[1])
    np.testing.assert_allclose(
        K.random_bivariate_generalized_gaussian(15, sx_r, sy_r, rot_r, beta_r, rng=12),
        K.bivariate_generalized_gaussian(15, sx, sx, 0, beta),
    )
    draws = np.random.default_rng(13)
    sx, sy, theta = draws.uniform(*sx_r), draws.uniform(*sy_r), draws.uniform(*rot_r)
    beta = draws.uniform(1, 1) if draws.uniform() < 0.5 else draws.uniform(1, 2)
    np.testing.assert_allclose(
        K.random_bivariate_plateau(9, sx_r, sy_r, rot_r, (1, 2), isotropic=False, rng=13),
        K.bivariate_plateau(9, sx, sy, theta, beta, isotropic=False),
    )


def test_random_kernels_are_reproducible_and_noise_is_multiplicative():
    args = (21, (0.2, 3), (0.2, 3), (-math.pi, math.pi))
    a = K.random_bivariate_gaussian(*args, isotropic=False, rng=5)
    np.testing.assert_array_equal(a, K.random_bivariate_gaussian(*args, isotropic=False, rng=5))
    assert not np.array_equal(a, K.random_bivariate_gaussian(*args, isotropic=False, rng=6))
    noisy = K.random_bivariate_gaussian(*args, noise_range=(0.75, 1.25), isotropic=False, rng=5)
    ratio = noisy / a
    ratio /= np.median(ratio)
    assert noisy.sum() == pytest.approx(1.0)
    assert 0.55 < ratio.min() < 0.8 and 1.2 < ratio.max() < 1.7  # taps scaled by U(0.75, 1.25)


def test_mixed_kernels_follow_kernel_prob():
    probs = [0.45, 0.25, 0.12, 0.03, 0.12, 0.03]
    rng = np.random.default_rng(0)
    n = 6000
    names = [K.choose_kernel_type(list(K.KERNEL_TYPES), probs, rng) for _ in range(n)]
    for name, p in zip(K.KERNEL_TYPES, probs):
        assert abs(names.count(name) / n - p) < 4 * math.sqrt(p * (1 - p) / n), name
    only = K.random_mixed_kernels(["generalized_aniso"], [1], 11, (1, 2), (1, 2), (0, 1), (0.5, 4), rng=3)
    assert only.shape == (11, 11) and only.sum() == pytest.approx(1.0)
    # Plateau kernels never get tap noise, as in BasicSR.
    args = (["plateau_iso"], [1], 9, (1, 2), (1, 2), (0, 1), (0.5, 4), (1, 2))
    np.testing.assert_array_equal(
        K.random_mixed_kernels(*args, noise_range=(0.5, 1.5), rng=4), K.random_mixed_kernels(*args, rng=4)
    )


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="kernel_size must be a positive odd int"):
        K.random_bivariate_gaussian(8, (1, 2), (1, 2), (0, 1), rng=0)
    with pytest.raises(ValueError, match="sigma_x_range"):
        K.random_bivariate_gaussian(7, (2, 1), (1, 2), (0, 1), rng=0)
    with pytest.raises(ValueError, match="beta_range.*contain 1"):
        K.random_bivariate_plateau(7, (1, 2), (1, 2), (0, 1), (2, 4), rng=0)
    with pytest.raises(ValueError, match="unknown kernel type"):
        K.random_mixed_kernels(["box"], [1], rng=0)
    with pytest.raises(ValueError, match="same, non-zero length"):
        K.random_mixed_kernels(["iso", "aniso"], [1], rng=0)
    with pytest.raises(TypeError, match="rng must be"):
        K.random_bivariate_gaussian(7, (1, 2), (1, 2), (0, 1), rng=np.random.RandomState(0))
    with pytest.raises(ValueError, match="pad_to"):
        K.circular_lowpass_kernel(1.0, 7, pad_to=22)
