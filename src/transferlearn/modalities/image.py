"""Images: class folders, lists, IDX files, Hub datasets; timm and transformers vision classifiers."""

from __future__ import annotations

import json
from pathlib import Path

from ..config import TrainConfig
from ..data.splits import LabelledData
from .base import Modality, augment_preset, label_request, register


@register
class Image(Modality):
    name = "image"
    row_column = "image"
    finetune_lr = 2e-4  # auto's fine-tunes start from a probed head at this rate
    pipeline_tag = "image-classification"
    onnx_inputs = ("pixel_values",)

    def load_data(self, config: TrainConfig, shape=None, data=None) -> LabelledData:
        from ..data.images import load_image_data

        return load_image_data(
            data or config.data, image_column=config.image_column,
            val_split=config.val_split, seed=config.carve_seed, sample_seed=config.seed,
            max_train_samples=config.max_train_samples if data is None else None,
            max_eval_samples=config.max_eval_samples, on_bad_rows=config.on_bad_rows,
            data_config=config.data_config, carve_validation=data is None, **label_request(config, shape),
        )

    def load_model(self, config: TrainConfig, shape):
        from ..models.image import load_image_classifier

        return load_image_classifier(
            config.model, shape.output_names, from_scratch=config.from_scratch, head=config.head,
            head_dropout=config.head_dropout, backbone_dropout=config.backbone_dropout, image_size=config.image_size,
            trust_remote_code=config.trust_remote_code,
        )

    def load_model_folder(self, folder: Path):
        from ..models.image import load_image_model_folder

        return load_image_model_folder(folder)[0]

    def load_processor(self, folder: Path):
        from ..data.augment import ImageSpec
        from ..models.image import ImageProcessing

        return ImageProcessing(ImageSpec.load(folder))

    def encode(self, bundle, dataset, config: TrainConfig, train: bool = False):
        from ..data.augment import eval_transform, open_image, train_transform

        spec = bundle.processor.spec
        transform = train_transform(spec, augment_preset(config)) if train else eval_transform(spec)
        cache = self._decoded_cache(dataset, spec) if config.decoded_cache else None
        read = cache or open_image

        def decode(batch):
            return {"pixel_values": [transform(read(image)) for image in batch["image"]],
                    "label": batch["label"], "_train": [train] * len(batch["label"])}

        encoded = dataset.with_transform(decode)
        encoded.decoded_cache = cache  # what the tests and benchmarks count
        return encoded

    @staticmethod
    def _decoded_cache(dataset, spec):
        from ..data.decoded_cache import DecodedImages, open_decoded

        rows = list(dataset.with_format(None)["image"])
        return open_decoded(rows, DecodedImages.shape_for(spec.size, spec.crop_pct), 1,
                            lambda: DecodedImages(rows, spec.size, spec.crop_pct, spec.interpolation))

    def collator(self, bundle, config: TrainConfig):
        from ..data.augment import MixCollator

        return MixCollator(len(bundle.model.config.id2label), mixup=config.mixup, cutmix=config.cutmix)

    def read_inputs(self, processor, items: list, max_length: int = 0) -> dict:
        from ..models.image import image_batch

        return image_batch(processor.spec, list(items))

    def preprocessing(self, bundle, config: TrainConfig) -> dict:
        from dataclasses import asdict

        return {"modality": "image", **asdict(bundle.processor.spec)}

    def input_sizes(self, config: TrainConfig, data: LabelledData, bundle) -> list[int]:
        """The backbone's size, and a smaller one when the pictures are far smaller (upsampling a 28 px image to
        224 px adds compute, not information): 2x their median short side, in steps of 32, at least 64. Only for
        convolutional timm models (a ViT's position table fixes its input size) and when --image-size is not set."""
        if config.image_size is not None or not hasattr(bundle.model, "architecture"):
            return []
        if bundle.model.model.pretrained_cfg.get("fixed_input_size", False):
            return []
        from ..data.images import median_short_side

        native, default = median_short_side(data.splits["train"].with_format(None)["image"]), bundle.processor.spec.size
        small = max(64, -(-2 * native // 32) * 32)
        return [default, small] if native and small <= default // 2 else []

    def set_input_size(self, bundle, size: int) -> None:
        from dataclasses import replace

        bundle.processor.spec = replace(bundle.processor.spec, size=size)
        bundle.info["image_size"] = size

    def augments(self, config: TrainConfig) -> bool:
        return augment_preset(config) != "none" or config.mixup > 0 or config.cutmix > 0

    def augmentation_preview(self, encoded_train, bundle, config: TrainConfig, n: int = 16) -> bytes | None:
        if not self.augments(config):
            return None
        from ..data.augment import augmented_grid

        return augmented_grid(encoded_train, bundle.processor.spec, self.collator(bundle, config), n=n,
                              seed=config.seed)

    def quantization_misfit(self, method: str) -> str | None:
        if method == "dynamic":
            return ("dynamic int8 quantization does not suit convolutional image models (measured: EfficientNet "
                    "logits off by 0.73); use --method static, which calibrates activations on training images")
        if method == "torch-dynamic":
            return ("torch dynamic quantization only converts Linear layers; an image model's compute is in its "
                    "convolutions, so it would gain nothing. Use --method static")
        return None

    def library_name(self, model_dir: Path) -> str:
        config = model_dir / "config.json"
        return "timm" if config.exists() and "architecture" in json.loads(config.read_text()) else "transformers"

    def usage_snippet(self, model_dir: Path) -> list[str]:
        if self.library_name(model_dir) == "timm":
            return ["```python", "import timm", 'model = timm.create_model("local-dir:.", pretrained=True).eval()',
                    "```"]
        return super().usage_snippet(model_dir)

    def example_input(self):
        import io

        from PIL import Image

        buffer = io.BytesIO()
        Image.new("RGB", (64, 64), (127, 127, 127)).save(buffer, "PNG")
        return buffer.getvalue()

    def upload_size(self, data: bytes) -> tuple[float, str]:
        import io

        from PIL import Image, UnidentifiedImageError

        from ..errors import DataError

        try:
            with Image.open(io.BytesIO(data)) as image:  # the header only: nothing is decoded yet
                width, height = image.size
        except Image.DecompressionBombError as exc:
            raise DataError(f"image too large to decode safely ({exc})") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise DataError(f"not an image Pillow can read ({exc})") from None
        return float(width * height), "pixels"

    def describe_input(self, item) -> str:
        return str(item) if isinstance(item, (str, Path)) else "<image>"

    def input_flags(self, item) -> list[str]:
        """Tiny or extreme-aspect pictures (read from the header only)."""
        import io

        from PIL import Image

        source = io.BytesIO(item["bytes"]) if isinstance(item, dict) and item.get("bytes") is not None else (
            item["path"] if isinstance(item, dict) else item)
        with Image.open(source) as picture:
            width, height = picture.size
        flags = []
        if min(width, height) < 32:
            flags.append(f"tiny: {width}x{height} px")
        if max(width, height) / max(min(width, height), 1) > 4:
            flags.append(f"extreme aspect ratio: {width}x{height}")
        return flags

    def inline_html(self, item) -> str:
        """A 112 px PNG thumbnail, inline (the report reads offline)."""
        import base64
        import html
        import io

        from ..data.augment import open_image

        picture = open_image(item)
        picture.thumbnail((112, 112))
        buffer = io.BytesIO()
        picture.save(buffer, "PNG")
        name = html.escape(Path(str(item)).name)
        return (f"<img class='thumb' alt='{name}' title='{name}' "
                f"src='data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}'>")

    def baseline(self):
        from ..data.baseline_features import Pixels

        return "16x16 pixels", Pixels()
