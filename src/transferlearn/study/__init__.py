"""Studies: arms x fractions of the labels x seeds, each an ordinary run; the evidence and a recommendation.
``study.config`` (what a study is), ``study.runner`` (running it), ``study.analysis`` / ``stats`` (the numbers),
``study.report`` (study.html)."""
