"""The built-in entries: Real-ESRGAN's release files, each with its digest and where it comes from.

Real-ESRGAN publishes no list of digests. Each SHA-256 below is one that independent public
projects pin for the same release URL (found with a code search; /work/notes/zoo-digests.md in
the project notes lists every source). Where the sources disagree, or only one was found, the
entry says so in `digest_sources` and also checks the file's layout after download
(`verify_layout=True`). The discriminators have no published digest at all: they are checked by
size bound and layout, and the digest seen at the first download is recorded and enforced after.

Licences: Real-ESRGAN's code and release files are under its BSD-3-Clause licence (the
repository's LICENSE; the releases carry no separate terms). ESRGAN_SRx4_DF2KOST_official is the
paper's ESRGAN model (xinntao/ESRGAN, Apache-2.0) converted to BasicSR's layout (Apache-2.0) and
re-published in Real-ESRGAN's release v0.1.1; we rely on ESRGAN's Apache-2.0 licence for it.
"""

from keras_esrgan.pretrained.registry import ModelEntry

RELEASES = "https://github.com/xinntao/Real-ESRGAN/releases/download"
REAL_ESRGAN = "Wang et al., Real-ESRGAN (ICCVW 2021), arXiv:2107.10833; github.com/xinntao/Real-ESRGAN"
ESRGAN = "Wang et al., ESRGAN (ECCVW 2018), arXiv:1809.00219; github.com/xinntao/ESRGAN"
AUR_030 = "archlinux/aur PKGBUILD of python-realesrgan 0.3.0 (sha256sums, computed by makepkg)"
AUR_0230 = "archlinux/aur PKGBUILD of python-realesrgan 0.2.3.0 (sha256sums)"
AUR_0224 = "archlinux/aur PKGBUILD of python-realesrgan 0.2.2.4 (sha256sums)"


def _discriminator(name, generator):
    # Released with no digest anywhere: checked by a size bound and layout (see module doc).
    return ModelEntry(
        name=name,
        url=f"{RELEASES}/v0.2.2.3/{name}.pth",
        sha256=None,
        file_name=f"{name}.pth",
        arch="UNetDiscriminatorSN",
        scale=1,
        kind="discriminator",
        license="BSD-3-Clause",
        description=f"U-Net discriminator trained with {generator}, for fine-tuning it",
        paper_or_source=REAL_ESRGAN,
        digest_sources=("NONE: no public project pins a digest for this file (code search)",
                        "checked instead: at most max_size bytes, a UNetDiscriminatorSN state dict "
                        "under 'params'; the digest seen at first download is recorded and "
                        "enforced afterwards"),
        param_key="params",
        max_size=24_000_000,  # 4.4 M float32 parameters are 17.5 MB
    )


_BUILTIN = [
    ModelEntry(
        name="RealESRGAN_x4plus",
        url=f"{RELEASES}/v0.1.0/RealESRGAN_x4plus.pth",
        sha256="4fa0d38905f75ac06eb49a7951b426670021be3018265fd191d2125df9d682f1",
        size=67_040_989,
        file_name="RealESRGAN_x4plus.pth",
        arch="RRDBNet",
        scale=4,
        license="BSD-3-Clause",
        description="x4 for real-world photos (GAN-trained on synthetic degradations)",
        paper_or_source=REAL_ESRGAN,
        digest_sources=(AUR_030, AUR_0230, AUR_0224, "10+ further independent public projects "
                        "(code search), several also pinning 67,040,989 bytes"),
        pair="RealESRNet_x4plus",
        param_key="params_ema",
    ),
    ModelEntry(
        name="RealESRNet_x4plus",
        url=f"{RELEASES}/v0.1.1/RealESRNet_x4plus.pth",
        sha256="a820b9bde89a874d7599d545567308ce6c128fc8754a53208eda016d40aa81df",
        size=67_040_989,
        file_name="RealESRNet_x4plus.pth",
        arch="RRDBNet",
        scale=4,
        license="BSD-3-Clause",
        description="x4, the PSNR-oriented stage of RealESRGAN_x4plus (no GAN loss): "
                    "smoother, fewer artefacts",
        paper_or_source=REAL_ESRGAN,
        digest_sources=(AUR_030, AUR_0230, "8+ further independent public projects (code "
                        "search), two pinning 67,040,989 bytes", "one project pins df35f2bf...95b5c "
                        "instead: outvoted, not used"),
        pair="RealESRGAN_x4plus",
        param_key="params_ema",
    ),
    ModelEntry(
        name="RealESRGAN_x2plus",
        url=f"{RELEASES}/v0.2.1/RealESRGAN_x2plus.pth",
        sha256="49fafd45f8fd7aa8d31ab2a22d14d91b536c34494a5cfe31eb5d89c2fa266abb",
        size=67_061_725,
        file_name="RealESRGAN_x2plus.pth",
        arch="RRDBNet",
        scale=2,
        license="BSD-3-Clause",
        description="x2 for real-world photos (pixel-unshuffled RRDBNet)",
        paper_or_source=REAL_ESRGAN,
        digest_sources=(AUR_030, AUR_0230, "8+ further independent public projects (code "
                        "search), two pinning 67,061,725 bytes"),
        param_key="params_ema",
    ),
    ModelEntry(
        name="RealESRGAN_x4plus_anime_6B",
        url=f"{RELEASES}/v0.2.2.4/RealESRGAN_x4plus_anime_6B.pth",
        sha256="f872d837d3c90ed2e05227bed711af5671a6fd1c9f7d7e91c911a61f155e99da",
        size=17_938_799,
        file_name="RealESRGAN_x4plus_anime_6B.pth",
        arch="RRDBNet",
        arch_kwargs=dict(num_block=6),
        scale=4,
        license="BSD-3-Clause",
        description="x4 for anime illustrations (6-block RRDBNet)",
        paper_or_source=REAL_ESRGAN,
        digest_sources=(AUR_030, AUR_0230, AUR_0224, "8+ further independent public projects "
                        "(code search), three pinning 17,938,799 bytes"),
        param_key="params_ema",
    ),
    ModelEntry(
        name="realesr-animevideov3",
        url=f"{RELEASES}/v0.2.5.0/realesr-animevideov3.pth",
        sha256="b8a8376811077954d82ca3fcf476f1ac3da3e8a68a4f4d71363008000a18b75d",
        size=2_504_012,
        file_name="realesr-animevideov3.pth",
        arch="SRVGGNetCompact",
        arch_kwargs=dict(num_conv=16),
        scale=4,
        license="BSD-3-Clause",
        description="x4 for anime video, compact and fast (SRVGGNetCompact, 16 convs)",
        paper_or_source=REAL_ESRGAN,
        digest_sources=(AUR_030, "9+ further independent public projects (code search), two "
                        "pinning 2,504,012 bytes", "DISPUTED: two near-identical files (likely one "
                        "author) pin 3a5ca263...60b0c7d6 and one pins abc02804..., which is the "
                        "digest of the ncnn Windows zip; the majority digest is pinned and the "
                        "layout is checked too"),
        param_key="params",
        verify_layout=True,
    ),
    ModelEntry(
        name="realesr-general-x4v3",
        url=f"{RELEASES}/v0.2.5.0/realesr-general-x4v3.pth",
        sha256="8dc7edb9ac80ccdc30c3a5dca6616509367f05fbc184ad95b731f05bece96292",
        size=4_885_111,
        file_name="realesr-general-x4v3.pth",
        arch="SRVGGNetCompact",
        arch_kwargs=dict(num_conv=32),
        scale=4,
        license="BSD-3-Clause",
        description="x4 for general scenes, small (SRVGGNetCompact, 32 convs); with its wdn "
                    "pair gives a denoise-strength slider",
        paper_or_source=REAL_ESRGAN,
        digest_sources=(AUR_030, "9+ further independent public projects (code search), four "
                        "pinning 4,885,111 bytes"),
        pair="realesr-general-wdn-x4v3",
        param_key="params",
    ),
    ModelEntry(
        name="realesr-general-wdn-x4v3",
        url=f"{RELEASES}/v0.2.5.0/realesr-general-wdn-x4v3.pth",
        sha256="1641f8c4464b9f097c9fdda5589273713f67cf59f3d909e0bd688f0cee269dca",
        size=4_885_111,
        file_name="realesr-general-wdn-x4v3.pth",
        arch="SRVGGNetCompact",
        arch_kwargs=dict(num_conv=32),
        scale=4,
        license="BSD-3-Clause",
        description="x4 general, weak-denoise variant of realesr-general-x4v3 (keeps more "
                    "texture and noise)",
        paper_or_source=REAL_ESRGAN,
        digest_sources=(AUR_030, "9+ further independent public projects (code search), three "
                        "pinning 4,885,111 bytes"),
        pair="realesr-general-x4v3",
        param_key="params",
    ),
    ModelEntry(
        name="ESRGAN_SRx4_DF2KOST_official",
        url=f"{RELEASES}/v0.1.1/ESRGAN_SRx4_DF2KOST_official-ff704c30.pth",
        sha256="ff704c30ff560305e48ed1f4db895e525ab6bc81a46fafe80c0094a271c806d9",
        file_name="ESRGAN_SRx4_DF2KOST_official-ff704c30.pth",
        arch="RRDBNet",
        scale=4,
        license="Apache-2.0",
        description="x4, the ESRGAN paper's GAN model (DF2K+OST) in BasicSR's layout: bicubic "
                    "inputs, not real-world degradations",
        paper_or_source=ESRGAN,
        digest_sources=("ONE public project only (two revisions of one table, code search)",
                        "partial independent check: the file name's -ff704c30 suffix is "
                        "torch.hub's first 8 hex digits of the file's SHA-256, and the pinned "
                        "digest starts with them", "layout checked after download too"),
        verify_layout=True,
        max_size=72_000_000,
    ),
    *(_discriminator(f"RealESRGAN_{x}plus_netD", f"RealESRGAN_{x}plus") for x in ("x4", "x2")),
]


def builtin_entries():
    """The built-in `ModelEntry`s, in display order."""
    return list(_BUILTIN)
