"""A drop-in for ``torchdiffeq`` on odeattn's engine: ``import odeattn.torchdiffeq as torchdiffeq``.

``odeint``, ``odeint_adjoint``, ``odeint_event`` and ``odeint_dense`` with torchdiffeq's
signatures, defaults, method names and semantics (tuple states, reversed time, ``method=None`` =
dopri5, tensor rtol/atol, options ``step_size``/``grid_constructor``/``interp``/``perturb`` for
fixed grids and ``first_step``/``step_t``/``jump_t``/``min_step``/``max_step``/``max_num_steps``/
``safety``/``ifactor``/``dfactor``/``dtype``/``norm`` for adaptive ones; unknown options warn;
``callback_step``/``callback_accept_step``/``callback_reject_step`` attributes of func;
``event_fn``). The stage kernels are odeattn's ``Stepper`` over its verified tableaux; here
``rk4`` is the 3/8 rule (``odeattn.odeint``'s ``rk4`` is classic RK4), ``gl4`` has the correct
nodes 1/2 ± √3/6 (torchdiffeq HEAD repeats one node), ``dopri8`` is Hairer's DOP853.
Differences from torchdiffeq: outputs of adaptive solves other than dopri5 use the cubic
Hermite dense output (torchdiffeq: a quartic through a mid-point value); gradients w.r.t. ``t``
of adaptive solves are those of the exact flow (``odeattn._time_grad``).
"""

from odeattn.torchdiffeq._adjoint import odeint_adjoint, odeint_event
from odeattn.torchdiffeq._api import odeint, odeint_dense
from odeattn.torchdiffeq._solvers import SOLVERS

__all__ = ["SOLVERS", "odeint", "odeint_adjoint", "odeint_dense", "odeint_event"]
