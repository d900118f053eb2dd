"""Image folders in the calibration data directory (``compile.calibration_data = dir:<folder>``).

Two layouts:

- flat: image files directly in the folder; they calibrate, nothing more;
- classes (torchvision's ImageFolder layout): one subfolder per class holding its images; they calibrate
  (taken from every class in turn) and give top-1 accuracy against the labels for eager fp32, the
  fake-quantized model and the engine (``LabelledImages``).

Labels: a class folder named by an integer ("0", "207") is that output index of the model; otherwise the
classes are numbered in sorted order, as ImageFolder does, which is right when the folder holds every class
the model predicts in the model's order (the 1000 ImageNet synset folders, say). The description says which.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from engine.errors import CalibrationDataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
# torchvision's ImageNet preprocessing: resize the short side to 256/224 of the crop, centre crop, normalise
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE_RATIO = 256 / 224

LABELLED_MAX_IMAGES = 512  # images a labelled folder contributes to the accuracy figures (memory: 300 MB at 224)
HINT_LAYOUT = (
    "A labelled folder holds one subfolder per class (at least two), each with .jpg/.png images: "
    "<folder>/<class>/<image>."
)


@dataclass(frozen=True)
class FolderLayout:
    folder: Path
    files: tuple[Path, ...]  # flat: sorted; classes: taken from each class in turn
    labels: tuple[int, ...] | None  # per file, for the classes layout
    classes: tuple[str, ...] = ()
    numbered: bool = False  # class folders named by the model's output index
    loose_files: int = 0  # images beside the class folders (ignored, as ImageFolder does)

    @property
    def labelled(self) -> bool:
        return self.labels is not None

    def describe(self) -> str:
        if not self.labelled:
            return f"{len(self.files)} images in {self.folder.name}/"
        how = "folder names are output indices" if self.numbered else "classes numbered in sorted order"
        loose = f"; {self.loose_files} loose images beside the class folders ignored" if self.loose_files else ""
        return f"{len(self.files)} images in {len(self.classes)} classes in {self.folder.name}/ ({how}{loose})"


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def inspect_folder(folder: Path) -> FolderLayout:
    """The folder's layout, from file names alone (nothing decoded). Raises ``CalibrationDataError`` naming what
    is wrong: no images at all, subfolders none of which holds images (no classes), a class folder without
    images, or a single class."""
    loose = _images_in(folder)
    subdirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    per_class = {d.name: _images_in(d) for d in subdirs}
    with_images = {name: files for name, files in per_class.items() if files}
    if not with_images:
        if loose:
            return FolderLayout(folder, tuple(loose), None)
        if subdirs:
            raise CalibrationDataError(
                f"{folder.name}/ has no classes: none of its subfolders ({', '.join(d.name for d in subdirs[:5])}"
                f"{' ...' if len(subdirs) > 5 else ''}) holds images.",
                HINT_LAYOUT,
            )
        raise CalibrationDataError(f"{folder.name}/ holds no images.", f"Put {', '.join(IMAGE_SUFFIXES)} files in it.")
    empty = [name for name, files in per_class.items() if not files]
    if empty:
        raise CalibrationDataError(
            f"{folder.name}/: the class folder {empty[0]}/ holds no images"
            + (f" (nor do {len(empty) - 1} others)" if len(empty) > 1 else "")
            + ".",
            "Remove the empty class folders or put images in them. " + HINT_LAYOUT,
        )
    if len(with_images) == 1:
        (name,) = with_images
        raise CalibrationDataError(
            f"{folder.name}/ holds one class ({name}/): top-1 accuracy against labels needs at least two.",
            f"Add a folder per class, or put the images directly in {folder.name}/ to calibrate without labels.",
        )
    names = sorted(with_images)
    numbered = all(n.isdigit() for n in names)
    index = {n: int(n) if numbered else i for i, n in enumerate(names)}
    files: list[Path] = []
    labels: list[int] = []
    queues = {n: list(with_images[n]) for n in names}
    while any(queues.values()):  # every class in turn: the first N calibrate on all classes
        for n in names:
            if queues[n]:
                files.append(queues[n].pop(0))
                labels.append(index[n])
    return FolderLayout(folder, tuple(files), tuple(labels), tuple(names), numbered, len(loose))


def decode(files: list[Path] | tuple[Path, ...], folder: Path, sample_shape: tuple[int, ...]) -> torch.Tensor:
    """The images resized, centre-cropped and normalised as torchvision's ImageNet models expect."""
    if len(sample_shape) != 3 or sample_shape[0] != 3:
        raise CalibrationDataError(
            f"{folder.name}/: image folders feed models whose input is one RGB image "
            f"(3, H, W); this model takes {sample_shape}.",
            "Use a tensor file or random calibration data.",
        )
    from PIL import Image, UnidentifiedImageError  # noqa: PLC0415
    from torchvision import transforms  # noqa: PLC0415

    _, h, w = sample_shape
    prepare = transforms.Compose(
        [
            transforms.Resize(round(min(h, w) * RESIZE_RATIO)),
            transforms.CenterCrop((h, w)),
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
    images = []
    for f in files:
        try:
            with Image.open(f) as im:
                images.append(prepare(im.convert("RGB")))
        except (UnidentifiedImageError, OSError) as e:
            raise CalibrationDataError(
                f"{folder.name}/{f.relative_to(folder)} is not a readable image ({e}).",
                "Remove it or replace it with a valid image.",
            ) from None
    return torch.stack(images)


@dataclass
class LabelledImages:
    """Images of a labelled folder with their labels, for top-1 accuracy against them."""

    images: torch.Tensor  # (N, 3, H, W) float32 on CPU
    labels: torch.Tensor  # (N,) int64
    description: str
    classes: int

    def check_outputs(self, outputs: int) -> None:
        """Raise when a label is not an output index of a model with ``outputs`` classes."""
        top = int(self.labels.max())
        if top >= outputs:
            raise CalibrationDataError(
                f"The labelled folder ({self.description}) has label {top}, but the model predicts {outputs} classes.",
                "Name the class folders by the model's output index (0, 1, ...), or hold exactly "
                "the classes the model predicts, in its order.",
            )


def load_labelled(
    folder: Path, sample_shape: tuple[int, ...], limit: int = LABELLED_MAX_IMAGES
) -> LabelledImages | None:
    """Up to ``limit`` images of a labelled folder (every class in turn), or None for a flat folder."""
    layout = inspect_folder(folder)
    if not layout.labelled or layout.labels is None:
        return None
    files = layout.files[:limit]
    images = decode(files, folder, sample_shape)
    labels = torch.tensor(layout.labels[:limit], dtype=torch.int64)
    taken = f" (the first {limit} of them)" if len(layout.files) > limit else ""
    return LabelledImages(images, labels, layout.describe() + taken, len(layout.classes))


def top1(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float((logits.float().argmax(dim=1) == labels).float().mean())
