"""What a kernel image is, from its header: its architecture, its version banner, and its page size.

Which architecture an image is comes from its magic (fixtures/arch.py); this file knows the formats.
bzImage (x86 boot protocol): the version string the header points at. Image (arm64's header: page
size in its flags; riscv's has the same shape): the banner searched in the image. What distributions
wrap an Image in: gzip, and EFI zboot ("MZ", "zimg" at 4, a gzip or zstd payload at the offset and
size the header gives). QEMU 7.2's -kernel takes a plain or gzipped Image but not zboot (virtme-ng
1.42 unwraps that itself); the unwrapped Image is kept in the cache, to read its banner once.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import struct
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

from fixtures.arch import Arch, of_image
from reports.exits import UserError

HEAD_BYTES = 0x10000
BZIMAGE = "bzImage"
IMAGE_FLAGS_AT = 0x30
# Image header flags bits 1-2 (Documentation/arch/arm64/booting.rst): 0 unspecified, then 4K, 16K, 64K.
IMAGE_PAGE_SIZES = {1: 4096, 2: 16384, 3: 65536}
ZBOOT_MAGIC = b"zimg"
GZIP_MAGIC = b"\x1f\x8b"
# "Linux version RELEASE (BUILDER) (COMPILER) UTS_VERSION": the compiler's text has parentheses of its own.
LINUX_BANNER = re.compile(rb"Linux version (\S+) (\([^)]*\)) \((.*?)\) (#\d[^\n\0]*)")


@dataclass(frozen=True)
class ImageFacts:
    arch: Arch
    banner: str  # "RELEASE (BUILDER) UTS_VERSION", as an x86 header gives it
    page_size: int | None  # from the header, when it says (an arm64 Image does)


def identify(image: Path, cache: Path) -> ImageFacts:
    """IMAGE's architecture, banner and page size; a file that is no kernel image is the user's to fix."""
    head = read_head(image)
    arch = of_image(head)
    if arch is not None and arch.image_format == BZIMAGE:
        return ImageFacts(arch, bzimage_banner(head, image), None)
    plain = unwrapped(image, head, cache) if arch is None else image
    arch = of_image(read_head(plain)) if plain else None
    if plain is None or arch is None:
        raise UserError(f"{image} is no kernel image this suite knows (an x86 bzImage or an arm64 Image, plain, gzip or EFI zboot)")
    data = plain.read_bytes()
    return ImageFacts(arch, image_banner(data, image), image_page_size(data))


def read_head(image: Path) -> bytes:
    try:
        with image.open("rb") as f:
            return f.read(HEAD_BYTES)
    except OSError as err:
        raise UserError(f"cannot read kernel image {image}: {err.strerror}") from err


def bzimage_banner(head: bytes, image: Path) -> str:
    """The version string of an x86 bzImage, from its boot-protocol header."""
    (offset,) = struct.unpack_from("<H", head, 0x20E)
    raw = head[offset + 0x200 : offset + 0x200 + 256]
    banner = raw.split(b"\0", 1)[0].decode(errors="replace")
    if not banner:
        raise UserError(f"{image}: its bzImage header has no version string")
    return banner


def zboot_payload(head: bytes) -> tuple[int, int, str] | None:
    """(offset, size, compression) of an EFI zboot image's payload; None if HEAD is no zboot header."""
    if head[:2] != b"MZ" or head[4:8] != ZBOOT_MAGIC or len(head) < 56:
        return None
    offset, size = struct.unpack_from("<II", head, 8)
    return offset, size, head[24:56].split(b"\0", 1)[0].decode(errors="replace")


def unwrapped(image: Path, head: bytes, cache: Path) -> Path | None:
    """The kernel image a gzip file or EFI zboot image IMAGE wraps, decompressed into the cache (None:
    IMAGE is neither, or what it wraps is no kernel image known here)."""
    zboot = zboot_payload(head)
    if zboot is None and head[:2] != GZIP_MAGIC:
        return None
    data = image.read_bytes()
    out = cache / "images" / f"{hashlib.sha256(data).hexdigest()[:24]}.Image"
    if out.exists():
        return out
    plain = unwrap(data, zboot, image)
    if of_image(plain[:HEAD_BYTES]) is None:
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(plain)
    tmp.replace(out)
    return out


def unwrap(data: bytes, zboot: tuple[int, int, str] | None, image: Path) -> bytes:
    """The payload of a gzip file or of an EFI zboot image."""
    if zboot is None:
        return _gunzip(data, image)
    offset, size, compression = zboot
    payload = data[offset : offset + size]
    if compression == "gzip":
        return _gunzip(payload, image)
    if compression == "zstd":
        try:
            return subprocess.run(["zstd", "-q", "-d", "-c"], input=payload, capture_output=True, check=True).stdout
        except FileNotFoundError:
            raise UserError(f"{image} is zstd-compressed; install zstd (apt-get install zstd)") from None
        except subprocess.CalledProcessError as err:
            raise UserError(f"{image}: its zstd payload does not decompress: {err.stderr.decode(errors='replace').strip()}") from None
    raise UserError(f"{image}: EFI zboot compression {compression!r} is not supported (gzip and zstd are)")


def _gunzip(data: bytes, image: Path) -> bytes:
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as err:
        raise UserError(f"{image}: its gzip payload does not decompress: {err}") from None


def image_banner(data: bytes, image: Path) -> str:
    """The banner of a plain Image, shaped like a bzImage header's: release, builder, version."""
    found = LINUX_BANNER.search(data)
    if found is None:
        raise UserError(f"{image}: no 'Linux version' banner in the image")
    release, builder, _compiler, version = (part.decode(errors="replace") for part in found.groups())
    return f"{release} {builder} {version}".strip()


def image_page_size(data: bytes) -> int | None:
    """The page size an Image's header flags declare (None: unspecified, as arm64 before 3.17)."""
    (flags,) = struct.unpack_from("<Q", data, IMAGE_FLAGS_AT)
    return IMAGE_PAGE_SIZES.get((flags >> 1) & 3)
