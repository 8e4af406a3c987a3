"""Classical features for the built-in baseline (scikit-learn transformers over raw rows): TF-IDF for text,
downsampled pixels for images, MFCC statistics for audio."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer

from ..data.audio import read_audio
from ..data.augment import open_image

IMAGE_SIDE = 16  # 16 x 16 x 3 = 768 pixel features
AUDIO_RATE = 16_000
N_MFCC = 20


class _Stateless(TransformerMixin, BaseEstimator):
    def fit(self, rows, y=None):
        return self


class Pixels(_Stateless):
    """Each image resized to 16 x 16 RGB, scaled to [0, 1]."""

    def transform(self, rows):

        out = np.empty((len(rows), IMAGE_SIDE * IMAGE_SIDE * 3), dtype=np.float32)
        for i, row in enumerate(rows):
            image = open_image(row).convert("RGB").resize((IMAGE_SIDE, IMAGE_SIDE))
            out[i] = np.asarray(image, dtype=np.float32).reshape(-1) / 255.0
        return out


class MfccStatistics(_Stateless):
    """Mean and standard deviation over time of 20 MFCCs and their deltas (librosa), at 16 kHz."""

    def __init__(self, max_seconds: float = 10.0):
        self.max_seconds = max_seconds

    def transform(self, rows):
        import librosa

        out = np.zeros((len(rows), 4 * N_MFCC), dtype=np.float32)
        for i, row in enumerate(rows):
            samples = read_audio(row, AUDIO_RATE, self.max_seconds)
            if len(samples) < 2048:
                samples = np.pad(samples, (0, 2048 - len(samples)))
            mfcc = librosa.feature.mfcc(y=samples.astype(np.float32), sr=AUDIO_RATE, n_mfcc=N_MFCC)
            delta = librosa.feature.delta(mfcc, mode="nearest")
            out[i] = np.concatenate([mfcc.mean(1), mfcc.std(1), delta.mean(1), delta.std(1)])
        return out


def tfidf():

    return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1, max_features=200_000)


class PairOrText(BaseEstimator, TransformerMixin):
    """TF-IDF of texts; for sentence pairs (``(a, b)`` rows) the features of both sides: each side's TF-IDF, their
    element-wise product (the words they share) and absolute difference (the words only one has), and the word
    overlap (Jaccard) and length ratio — what a classical model can read of how two sentences relate."""

    def fit(self, rows, y=None):
        rows = list(rows)
        self.pairs_ = bool(rows) and isinstance(rows[0], (tuple, list))
        self.vectorizer_ = tfidf().fit([s for r in rows for s in r] if self.pairs_ else rows)
        return self

    def transform(self, rows):
        rows = list(rows)
        if not self.pairs_:
            return self.vectorizer_.transform(rows)
        a = self.vectorizer_.transform([r[0] for r in rows])
        b = self.vectorizer_.transform([r[1] for r in rows])
        overlap = []
        for first, second in rows:
            x, y = set(str(first).lower().split()), set(str(second).lower().split())
            overlap.append([len(x & y) / max(len(x | y), 1), min(len(x), len(y)) / max(len(x), len(y), 1)])
        return sp.hstack([a, b, a.multiply(b), abs(a - b), sp.csr_matrix(np.asarray(overlap))]).tocsr()
