"""Weight-sharing supernet (EAN / LTH4SA; SPOS): one set of weights for many ResNet architectures.

``Supernet(name, fixed, choices=Choices(...))`` shares the weights of every network
``create_model(name, **fixed, **arch)`` whose ``arch`` the :class:`Choices` allow: attention
placement bits, the adaptor, the tableau per stage, the depth per stage, the width per stage
(elastic width: the leading channels of weights built at the largest width), DIA sharing. An
architecture is a plain dict of those ``create_model`` kwargs; ``supernet(x, arch)`` runs it,
``supernet.extract(arch)`` returns the stand-alone model carrying the supernet's weights,
``supernet.sample(generator)`` / ``largest()`` / ``smallest()`` draw and bound them. Trained by
``odeattn.train.fit`` as any model (one drawn path per training forward, or the sandwich rule).
:func:`recalibrate` re-estimates BatchNorm statistics for one path; :func:`score` gives its
validation accuracy and loss without training it.

From a study file: :func:`from_study` maps the study's search space onto :class:`Choices`
(refusing what one set of weights cannot serve) and returns a supernet that speaks the study's
flat Optuna params (``sample`` gives them; ``arch_of`` / ``params_of`` convert);
:func:`supernet_plan` gives its training config, fingerprint and checkpoint under
``runs/<study>/supernet/``.

May import ``train`` and everything below it; ``search`` imports this package, never the reverse.
"""

from odeattn.supernet._choices import SHARINGS, UNSHAREABLE, Choices
from odeattn.supernet._plan import SupernetPlan, supernet_plan
from odeattn.supernet._recal import calibration_batches, recalibrate, score
from odeattn.supernet._study import DIMENSIONS, StudyMap, from_study, study_choices
from odeattn.supernet._supernet import Supernet

__all__ = [
    "DIMENSIONS",
    "SHARINGS",
    "UNSHAREABLE",
    "Choices",
    "StudyMap",
    "Supernet",
    "SupernetPlan",
    "calibration_batches",
    "from_study",
    "recalibrate",
    "score",
    "study_choices",
    "supernet_plan",
]
