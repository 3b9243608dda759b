"""Precision names, for inference and for training, and what they mean on this machine.

One vocabulary for every entry point (`Upscaler`, `evaluate`, the CLI's `--precision`, the
recipe's `--mixed_precision`, presets and benchmarks), one GPU probe.

- **Inference** (`INFERENCE_PRECISIONS`): `"auto"`, `"fp32"`, `"bf16"` (aliases `float32`,
  `bfloat16`, `mixed_bfloat16`). `"auto"` is bf16 on a CPU with native bfloat16 arithmetic and
  no GPU, else fp32: emulated bf16 is slower than fp32, and GPUs differ too much in bf16 support
  to guess. A bf16 generator holds its weights in bfloat16 (Keras policy `"bfloat16"`): the
  same output as `"mixed_bfloat16"`, which computes in bfloat16 too, without casting every
  kernel at every call (4% faster at 128x128 here).
- **Training** (`TRAINING_PRECISIONS`): `"off"`, `"auto"`, `"mixed_bfloat16"`, `"mixed_float16"`
  (and True/False, `"on"`, `"float32"`, `"fp32"`, `"bf16"`, `"fp16"`). Weights stay float32 in
  training; `"auto"` is mixed_float16 (loss-scaled) with a GPU, mixed_bfloat16 on a CPU.
"""

import functools

import tensorflow as tf

INFERENCE_PRECISIONS = ("auto", "fp32", "bf16")
# What inference runs in when not told (Upscaler, upscale, keras-esrgan upscale/video), and what
# scores are computed in (evaluate, keras-esrgan evaluate: the numbers to publish).
DEFAULT_INFERENCE_PRECISION = "auto"
SCORING_PRECISION = "fp32"
INFERENCE_ALIASES = {"float32": "fp32", "bfloat16": "bf16", "mixed_bfloat16": "bf16"}
# The Keras dtype policy a generator runs inference in, per precision.
INFERENCE_POLICIES = {"fp32": "float32", "bf16": "bfloat16"}

TRAINING_PRECISIONS = ("off", "auto", "mixed_bfloat16", "mixed_float16")
TRAINING_ALIASES = {
    "false": "off", "0": "off", "float32": "off", "fp32": "off",
    "true": "auto", "on": "auto", "1": "auto",
    "bf16": "mixed_bfloat16", "fp16": "mixed_float16",
}
# The Keras dtype policy training runs in, per precision ("auto" resolved first).
TRAINING_POLICIES = {"off": "float32", "mixed_bfloat16": "mixed_bfloat16", "mixed_float16": "mixed_float16"}


@functools.cache
def has_gpu():
    """Whether TensorFlow sees a GPU (asked once per process; the answer does not change).

    Example:
    >>> has_gpu() == bool(tf.config.list_physical_devices("GPU"))
    True
    """
    return bool(tf.config.list_physical_devices("GPU"))


def cpu_supports_bf16(cpuinfo="/proc/cpuinfo"):
    """True if the CPU has native bfloat16 arithmetic (AVX512-BF16 or AMX-BF16).

    Reads the `flags` line of /proc/cpuinfo (Linux). Elsewhere, or if it cannot be read,
    returns False: bfloat16 emulated without these instructions is slower than float32.

    Example:
    >>> with open("cpuinfo", "w") as fh:   # a Sapphire Rapids / Zen 4 flags line, shortened
    ...     _ = fh.write("flags : fpu sse2 avx512f avx512_bf16 amx_bf16")
    >>> cpu_supports_bf16("cpuinfo")
    True
    """
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[-1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def inference_precision(precision=DEFAULT_INFERENCE_PRECISION):
    """The compute precision `precision` means on this machine: `"fp32"` or `"bf16"`.

    Args:
        precision: one of `INFERENCE_PRECISIONS` or an alias (`"float32"`, `"bfloat16"`,
            `"mixed_bfloat16"`). `"auto"` is `"bf16"` when `cpu_supports_bf16()` and no GPU is
            visible (`has_gpu()`), else `"fp32"`.

    Raises:
        ValueError: any other name (the message lists the choices).

    Example:
    >>> inference_precision("float32"), inference_precision("bfloat16")
    ('fp32', 'bf16')
    >>> inference_precision("auto") == ("bf16" if cpu_supports_bf16() and not has_gpu() else "fp32")
    True
    """
    name = str(precision).lower()
    name = INFERENCE_ALIASES.get(name, name)
    if name not in INFERENCE_PRECISIONS:
        raise ValueError(
            f"precision must be one of {INFERENCE_PRECISIONS} (or float32/bfloat16), got {precision!r}"
        )
    if name != "auto":
        return name
    return "bf16" if cpu_supports_bf16() and not has_gpu() else "fp32"


def inference_policy(precision=DEFAULT_INFERENCE_PRECISION):
    """The Keras dtype policy a generator runs inference in: `"float32"` or `"bfloat16"`.

    Example:
    >>> inference_policy("fp32"), inference_policy("bf16")
    ('float32', 'bfloat16')
    """
    return INFERENCE_POLICIES[inference_precision(precision)]


def training_precision(mixed_precision=False):
    """`mixed_precision` as one of `TRAINING_PRECISIONS` (aliases folded, "auto" kept).

    Args:
        mixed_precision: True/False/None, a `TRAINING_PRECISIONS` name, or an alias (`"on"`,
            `"true"`, `"1"` -> auto; `"false"`, `"0"`, `"float32"`, `"fp32"` -> off; `"bf16"`,
            `"fp16"` -> the mixed policies). Case and surrounding spaces do not matter.

    Raises:
        ValueError: anything else (the message lists the choices).

    Example:
    >>> training_precision(True), training_precision("FP32"), training_precision("bf16")
    ('auto', 'off', 'mixed_bfloat16')
    """
    if mixed_precision is None or isinstance(mixed_precision, bool):
        return "auto" if mixed_precision else "off"
    name = str(mixed_precision).strip().lower()
    name = TRAINING_ALIASES.get(name, name)
    if name not in TRAINING_PRECISIONS:
        raise ValueError(
            f"mixed_precision must be one of {', '.join(TRAINING_PRECISIONS)} (or on/true/1, "
            f"false/0/float32, bf16/fp16), got {mixed_precision!r}"
        )
    return name


def training_policy(mixed_precision=False):
    """The Keras dtype policy of training with `mixed_precision` on this machine.

    `"auto"` (or True) is `"mixed_float16"` when a GPU is visible (loss-scaled by the trainers),
    else `"mixed_bfloat16"` (CPUs with AVX-512 BF16/AMX run it about 1.5-2x faster); off is
    `"float32"`.

    Example:
    >>> training_policy(False), training_policy("mixed_float16")
    ('float32', 'mixed_float16')
    >>> training_policy(True) == ("mixed_float16" if has_gpu() else "mixed_bfloat16")
    True
    """
    name = training_precision(mixed_precision)
    if name == "auto":
        name = "mixed_float16" if has_gpu() else "mixed_bfloat16"
    return TRAINING_POLICIES[name]
