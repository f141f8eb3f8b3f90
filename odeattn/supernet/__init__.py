"""Weight-sharing supernet (EAN / LTH4SA; SPOS): one set of weights for many ResNet architectures.

``Supernet(name, fixed, choices=Choices(...))`` shares the weights of every network
``create_model(name, **fixed, **arch)`` whose ``arch`` the :class:`Choices` allow: attention
placement bits, the adaptor, the tableau per stage, the depth per stage, DIA sharing. An
architecture is a plain dict of those ``create_model`` kwargs; ``supernet(x, arch)`` runs it,
``supernet.extract(arch)`` returns the stand-alone model carrying the supernet's weights,
``supernet.sample(generator)`` / ``largest()`` / ``smallest()`` draw and bound them. Trained by
``odeattn.train.fit`` as any model (one drawn path per training forward, or the sandwich rule).
:func:`recalibrate` re-estimates BatchNorm statistics for one path; :func:`score` gives its
validation accuracy and loss without training it.

May import ``train`` and everything below it; ``search`` imports this package, never the reverse.
"""

from odeattn.supernet._choices import SHARINGS, UNSHAREABLE, Choices
from odeattn.supernet._recal import calibration_batches, recalibrate, score
from odeattn.supernet._supernet import Supernet

__all__ = [
    "SHARINGS",
    "UNSHAREABLE",
    "Choices",
    "Supernet",
    "calibration_batches",
    "recalibrate",
    "score",
]
