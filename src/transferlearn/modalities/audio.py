"""Audio: class folders of clips, file-name labels, split lists, Hub datasets; transformers audio classifiers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..config import TrainConfig
from ..data.splits import LabelledData
from ..errors import ConfigError
from .base import Modality, augment_preset, label_request, register


@register
class Audio(Modality):
    name = "audio"
    row_column = "audio"
    finetune_lr = 5e-5  # auto's fine-tunes start from a probed head at this rate
    pipeline_tag = "audio-classification"
    onnx_inputs = ("input_values", "attention_mask", "input_features")
    sequence_inputs = ("input_values", "attention_mask")  # raw waveforms; Whisper's mel frames are fixed

    def load_data(self, config: TrainConfig, shape=None, data=None) -> LabelledData:
        from ..data.audio import load_audio_data

        return load_audio_data(
            data or config.data, audio_column=config.audio_column,
            label_from_filename=config.label_from_filename, group_from_filename=config.group_from_filename,
            val_split=config.val_split, seed=config.carve_seed, sample_seed=config.seed,
            max_train_samples=config.max_train_samples if data is None else None,
            max_eval_samples=config.max_eval_samples, on_bad_rows=config.on_bad_rows,
            data_config=config.data_config, carve_validation=data is None, **label_request(config, shape),
        )

    def load_model(self, config: TrainConfig, shape):
        from ..models.audio import load_audio_classifier

        if config.head != "linear":
            raise ConfigError(f"head '{config.head}' is not available for audio models (they keep their own head)")
        return load_audio_classifier(
            config.model, shape.output_names, from_scratch=config.from_scratch, head_dropout=config.head_dropout,
            backbone_dropout=config.backbone_dropout, max_seconds=config.max_duration,
            freeze_feature_encoder=config.freeze_feature_encoder, trust_remote_code=config.trust_remote_code,
        )

    def settings_from_data(self, config: TrainConfig, data: LabelledData) -> dict:
        """``max_duration`` from the training clips: their 99th-percentile length rounded up to 0.5 s (1-30 s), so
        short clips are not padded to 3 s (Whisper's cost grows with the window) and long ones are not cut."""
        if "max_duration" in config.model_fields_set:
            return {}
        from ..data.audio import clip_seconds

        lengths = clip_seconds(data.splits["train"].with_format(None)["audio"])
        if not lengths:
            return {}
        p99 = float(np.percentile(lengths, 99))
        value = min(30.0, max(1.0, math.ceil(p99 * 2) / 2))
        if value == config.max_duration:
            return {}
        return {"max_duration": (value, f"99 % of the training clips last <= {p99:.2f} s")}

    def load_model_folder(self, folder: Path):
        from ..models.audio import load_audio_model_folder

        return load_audio_model_folder(folder)[0]

    def load_processor(self, folder: Path):
        from ..models.audio import AudioProcessing

        return AudioProcessing.load(folder)

    def encode(self, bundle, dataset, config: TrainConfig, train: bool = False):
        from ..data.audio import read_audio
        from ..data.audio_augment import audio_augmentation

        processing = bundle.processor
        augment = audio_augmentation(augment_preset(config), config.background_noise_dir) if train else None
        cache = self._decoded_cache(dataset, processing.sampling_rate, config) if config.decoded_cache else None

        def read(clip):
            return cache(clip) if cache is not None else read_audio(clip, processing.sampling_rate, config.max_duration)

        def decode(batch):
            arrays = [read(a) for a in batch["audio"]]
            if augment is not None:
                arrays = [augment(samples=a, sample_rate=processing.sampling_rate) for a in arrays]
            features = processing(arrays)
            return {**{k: list(v) for k, v in features.items()}, "label": batch["label"]}

        encoded = dataset.with_transform(decode)
        encoded.decoded_cache = cache  # what the tests and benchmarks count
        return encoded

    @staticmethod
    def _decoded_cache(dataset, sampling_rate: int, config: TrainConfig):
        """Decoded clips of ``dataset``; None without a max_duration (rows of any length do not fit one array)."""
        if not config.max_duration:
            return None
        from ..data.decoded_cache import DecodedClips, open_decoded

        rows = list(dataset.with_format(None)["audio"])
        return open_decoded(rows, (int(config.max_duration * sampling_rate),), 4,
                            lambda: DecodedClips(rows, sampling_rate, config.max_duration))

    def collator(self, bundle, config: TrainConfig):
        from ..data.audio import collate_features

        return collate_features

    def read_inputs(self, processor, items: list, max_length: int = 0) -> dict:
        from ..models.audio import audio_batch

        return audio_batch(processor, list(items))

    def preprocessing(self, bundle, config: TrainConfig) -> dict:
        fe = bundle.processor.feature_extractor
        return {"modality": "audio", "feature_extractor": fe.to_dict(), "max_seconds": bundle.processor.max_seconds}

    def augments(self, config: TrainConfig) -> bool:
        return augment_preset(config) != "none"

    def quantization_misfit(self, method: str) -> str | None:
        return None

    def example_input(self):
        import io

        import numpy as np
        import soundfile as sf

        buffer = io.BytesIO()
        sf.write(buffer, np.zeros(16000, dtype=np.float32), 16000, format="WAV")
        return buffer.getvalue()

    def upload_size(self, data: bytes) -> tuple[float, str]:
        import io

        import soundfile as sf

        from ..errors import DataError

        try:
            info = sf.info(io.BytesIO(data))
        except Exception as exc:  # noqa: BLE001 — soundfile raises RuntimeError / LibsndfileError / TypeError
            raise DataError(f"not audio soundfile can read ({exc})") from None
        if info.frames <= 0:
            raise DataError("the clip holds no samples")
        return info.frames / info.samplerate, "seconds"

    def describe_input(self, item) -> str:
        return str(item) if isinstance(item, (str, Path)) else "<clip>"

    def input_flags(self, item) -> list[str]:
        """Silent, clipped or very short clips."""
        import numpy as np

        from ..data.audio import read_audio

        samples = read_audio(item, 16000)
        flags = []
        if len(samples) < 0.2 * 16000:
            flags.append(f"very short: {len(samples) / 16000:.2f} s")
        peak = float(np.abs(samples).max()) if len(samples) else 0.0
        if peak < 1e-4:
            flags.append("silent")
        elif np.mean(np.abs(samples) >= 0.999) > 0.001:
            flags.append(f"clipped: {np.mean(np.abs(samples) >= 0.999):.1%} of samples at full scale")
        return flags

    def inline_html(self, item) -> str:
        """A player with the clip inline (16 kHz WAV, the first 5 s), so the report plays offline."""
        import base64
        import html
        import io

        import soundfile as sf

        from ..data.audio import read_audio

        buffer = io.BytesIO()
        sf.write(buffer, read_audio(item, 16000, 5.0), 16000, format="WAV")
        name = html.escape(Path(str(item)).name)
        return (f"<audio controls preload='auto' title='{name}' "
                f"src='data:audio/wav;base64,{base64.b64encode(buffer.getvalue()).decode()}'></audio> {name}")

    def baseline(self):
        from ..data.baseline_features import MfccStatistics

        return "MFCC statistics", MfccStatistics()
