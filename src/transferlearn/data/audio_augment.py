"""Audio augmentation presets with audiomentations (not hand-written), applied to raw mono samples.

* ``light``  — gain (-6..+6 dB), time shift (up to 10 %), gaussian noise at 20-40 dB SNR;
* ``strong`` — light + time stretch (0.9-1.1), pitch shift (+-2 semitones), noise at 10-30 dB SNR, and
  background noise from ``background_noise_dir`` when given.
"""

from __future__ import annotations


def audio_augmentation(preset: str, background_noise_dir: str | None = None):
    """A callable ``(samples, sample_rate) -> samples``; None for ``none``."""
    if preset == "none":
        return None
    import audiomentations as A

    steps = [A.Gain(min_gain_db=-6, max_gain_db=6, p=0.5),
             A.Shift(min_shift=-0.1, max_shift=0.1, p=0.5)]
    if preset == "light":
        steps.append(A.AddGaussianSNR(min_snr_db=20, max_snr_db=40, p=0.5))
    else:
        steps += [A.AddGaussianSNR(min_snr_db=10, max_snr_db=30, p=0.5),
                  A.TimeStretch(min_rate=0.9, max_rate=1.1, leave_length_unchanged=True, p=0.3),
                  A.PitchShift(min_semitones=-2, max_semitones=2, p=0.3)]
        if background_noise_dir:
            steps.append(A.AddBackgroundNoise(sounds_path=background_noise_dir, min_snr_db=5, max_snr_db=20, p=0.5))
    return A.Compose(steps)
