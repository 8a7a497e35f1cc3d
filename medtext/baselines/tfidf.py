"""``tfidf``: word 1-2-gram TF-IDF features and class-balanced logistic regression, C chosen on validation."""

from __future__ import annotations

import numpy as np

from medtext.core.errors import MedtextError

from . import BaselineData, BaselineOptions, BaselineResult
from .selection import check_c_grid, check_splits, select_logistic_regression

MIN_DOCUMENTS = 2  # an n-gram seen in a single training abstract says little and bloats the vocabulary


def vectorizer(min_df: int = MIN_DOCUMENTS):
    """Sublinear term frequency, n-grams in at least ``min_df`` abstracts; fitted on the training texts only."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=min_df, strip_accents="unicode",
                           dtype=np.float32)


def run(data: BaselineData, options: BaselineOptions) -> BaselineResult:
    """Test probabilities of the logistic regression whose C scores best on validation (multi-label:
    one-vs-rest). ``chosen``: ``C``, the validation score it gave (``val/macro_f1`` or
    ``val/tuned_micro_f1``), ``grid`` (every C's score) and the ``vocabulary`` size."""
    check_c_grid(options.c_grid)
    check_splits(train=data.train_texts, validation=data.val_texts, test=data.test_texts)
    features = vectorizer()
    try:
        train = features.fit_transform(data.train_texts)
    except ValueError as err:  # every n-gram in fewer than MIN_DOCUMENTS abstracts
        raise MedtextError(f"tfidf: no usable vocabulary in the training texts ({err})") from None
    result = select_logistic_regression(train, data.train_labels, features.transform(data.val_texts),
                                        data.val_labels, features.transform(data.test_texts), data.label_names,
                                        data.multi_label, options.c_grid, options.seed)
    result.chosen["vocabulary"] = len(features.vocabulary_)
    return result
