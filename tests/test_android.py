"""The Android tile loop (android/): compiled with Debian's kotlinc and unit-tested on the JVM.

The library part (android/src/main/kotlin: TiledUpscaler, TileAxis, TileSidecar) and its JUnit 4
tests (android/src/test/kotlin) compile in one kotlinc call, without Gradle or the Android SDK.
The JUnit tests prove the tile arithmetic against stand-in models whose output is exactly known
(see the test classes); the tests here also check the Kotlin side against the Python package: a
sidecar freshly written by `keras_esrgan.export.tflite` reads back the same, and the tiles go
where `keras_esrgan.inference.tile_windows` puts them. android/glue/ (LiteRT Interpreter and
Bitmap) needs the Android SDK and is not compiled here.

Needs `kotlinc`, `java` and JUnit 4 (Debian: `apt-get install kotlin default-jdk-headless junit4`;
.ci/run installs them). Without them the tests skip, unless KERAS_ESRGAN_REQUIRE_KOTLIN=1 (set by
.ci/run), where they fail.
"""

import json
import os
import re
import shutil
import subprocess

import pytest

from tests.conftest import ROOT

ANDROID = ROOT / "android"
JUNIT = "/usr/share/java/junit4.jar"
RUNTIME_JARS = (JUNIT, "/usr/share/java/hamcrest-core.jar", "/usr/share/java/kotlin-stdlib.jar")
PACKAGE = "kerasesrgan.tiles"
# Fewer JUnit tests than this means test classes went missing (today: 27).
MIN_JUNIT_TESTS = 27


# The module-scoped fixtures below are built once: keep this file's tests on one xdist
# worker (pyproject: --dist loadgroup); other files' tests are spread one by one.
pytestmark = pytest.mark.xdist_group("android")


def _toolchain_missing():
    missing = [tool for tool in ("kotlinc", "java") if shutil.which(tool) is None]
    missing += [jar for jar in RUNTIME_JARS if not os.path.isfile(jar)]
    return missing


@pytest.fixture(scope="module")
def classes(tmp_path_factory):
    """The library and its tests compiled into one class folder (one kotlinc run)."""
    missing = _toolchain_missing()
    if missing:
        reason = (
            f"Kotlin toolchain not installed ({', '.join(missing)}); "
            "apt-get install kotlin default-jdk-headless junit4"
        )
        if os.environ.get("KERAS_ESRGAN_REQUIRE_KOTLIN") == "1":
            pytest.fail(f"{reason}. KERAS_ESRGAN_REQUIRE_KOTLIN=1 requires it.")
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("kotlin") / "classes"
    sources = sorted(str(p) for p in (ANDROID / "src").rglob("*.kt"))
    assert not any("/glue/" in s for s in sources)
    proc = subprocess.run(
        ["kotlinc", "-Werror", "-jvm-target", "1.8", "-cp", JUNIT, "-d", str(out), *sources],
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, f"kotlinc failed:\n{proc.stdout}\n{proc.stderr}"
    return out


def java(classes, *args):
    """Run a class from the compiled folder; the completed process."""
    classpath = os.pathsep.join([str(classes), *RUNTIME_JARS])
    return subprocess.run(
        ["java", "-cp", classpath, *args], capture_output=True, text=True, timeout=600
    )


def test_junit_tests_of_the_tile_loop_pass(classes):
    test_files = sorted((ANDROID / "src" / "test" / "kotlin").rglob("*Test.kt"))
    names = [f"{PACKAGE}.{path.stem}" for path in test_files]
    declared = sum(len(re.findall(r"^\s*@Test\b", p.read_text(), re.M)) for p in test_files)
    assert declared >= MIN_JUNIT_TESTS, f"only {declared} @Test methods in {names}"
    proc = java(classes, "org.junit.runner.JUnitCore", *names)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    # Every declared test ran: none skipped by a discovery or naming slip.
    assert f"OK ({declared} tests)" in proc.stdout, proc.stdout[-2000:]


def test_kotlin_reads_a_sidecar_written_by_the_exporter(classes, tmp_path):
    from keras_esrgan.export import sidecar_path, tflite
    from tests.export_helpers import image_like_generator

    # x2, so input.multiple_of is 2 and the pad is not the default.
    path = tmp_path / "tiny_x2.tflite"
    tflite(image_like_generator(scale=2, seed=0), path, "fp32", input_shape=(1, 16, 16, 3), tile_pad=5)
    with open(sidecar_path(path)) as fh:
        info = json.load(fh)
    proc = java(classes, f"{PACKAGE}.PrintSidecar", sidecar_path(path))
    assert proc.returncode == 0, proc.stderr
    read = dict(line.split("=", 1) for line in proc.stdout.splitlines())
    assert read == {
        "tile.size": "16", "tile.pad": "5", "scale": "2", "input.multiple_of": "2",
        "input.name": info["input"]["name"], "input.shape": "1,16,16,3",
        "output.name": info["output"]["name"], "output.shape": "1,32,32,3",
        "quantization": "fp32",
    }
    assert info["tile"] == {"size": 16, "pad": 5} and info["input"]["multiple_of"] == 2


def test_tiles_go_where_the_python_upscaler_puts_them(classes):
    from keras_esrgan.inference import tile_windows

    cases = []
    for unit in (1, 2, 4):
        for tile in (16, 48, 128):
            for core in sorted({unit, 4 * unit, tile // 2 // unit * unit, tile - 2 * unit}):
                for length in range(unit, 420, 7 * unit):
                    cases.append((length, tile, core, unit))
    proc = java(classes, f"{PACKAGE}.PrintTileStarts", *(",".join(map(str, c)) for c in cases))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == len(cases)
    for (length, tile, core, unit), line in zip(cases, lines):
        # tile_windows clips a window longer than the image to it; the Kotlin tile stays whole
        # (fixed-shape model) and starts at 0, the edge replicated.
        expected = [start for start, _ in tile_windows(length, tile, core, unit)]
        assert line == f"{length},{tile},{core},{unit}:" + ",".join(map(str, expected)), line
