"""Two-layer network with smoothed ReLU, trained to a certified SOSP.

``y_hat = ReLU_iota(X W^T + b) a + c`` with a ridge ``alpha ||W||_F^2`` on
the first layer only. By the derandomization lemma (x Gaussian, the bias b
trainable), at a second-order stationary point the component of W
orthogonal to the directions the target depends on collapses, so the row
space of W (and the gradients of the fitted function) reveal the index
subspace. Numpy in, numpy out.
"""

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from sklearn_derand._sosp._utils import make_generator
from sklearn_derand._sosp.optimize import minimize
from sklearn_derand._sosp.smoothing import smoothed_relu

__all__ = ["NetworkResult", "fit_network"]


@dataclass
class NetworkResult:
    """Fitted parameters (numpy) and the optimisation record."""

    W: np.ndarray
    b: np.ndarray
    a: np.ndarray
    c: np.ndarray
    n_iter: int
    converged: bool
    grad_norm: float
    min_eig: float
    loss_curve: list = field(repr=False)
    validation_scores: list = field(default_factory=list, repr=False)
    best_validation_score: float | None = None
    message: str = ""


def _init(n_features, n_hidden, n_outputs, gen):
    """PyTorch's default Linear initialisation, from a local generator."""

    def uniform(shape, bound):
        return (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound

    return {
        "W": uniform((n_hidden, n_features), 1 / math.sqrt(n_features)),
        "b": uniform((n_hidden,), 1 / math.sqrt(n_features)),
        "a": uniform((n_hidden, n_outputs), 1 / math.sqrt(n_hidden)),
        "c": torch.zeros(n_outputs, dtype=torch.float64),
    }


def predict(params, X, iota):
    """Network output for a (n, d) tensor X."""
    H = smoothed_relu(X @ params["W"].T + params["b"], iota)
    return H @ params["a"] + params["c"]


def fit_network(
    X,
    Y,
    *,
    n_hidden=64,
    alpha=1e-3,
    iota=4.0,
    solver="lbfgs",
    max_iter=300,
    lr=None,
    batch_size=200,
    tol=1e-5,
    n_iter_no_change=10,
    freeze_output_layer=False,
    X_val=None,
    Y_val=None,
    seed=0,
    device="cpu",
    verbose=0,
):
    """Train the network on (X, Y) (numpy, Y of shape (n, n_outputs)).

    Full-batch solvers ("lbfgs", "pgd", "hessian_descent", "gd") minimise
    ``0.5 mean ||Y - y_hat||^2 + alpha ||W||^2`` directly; "adam" takes
    minibatch steps (``max_iter`` counts epochs) and evaluates the full
    objective once per epoch for the stopping rule and the certificate.
    With validation data, the iterate with the best validation R^2 is kept
    and training stops after ``n_iter_no_change`` checks without an
    improvement of ``tol``; otherwise it stops when the training objective
    stalls the same way, or at a certified SOSP.
    """
    opts = {"dtype": torch.float64, "device": device}
    gen = make_generator(seed)
    Xt = torch.tensor(np.asarray(X), **opts)
    Yt = torch.tensor(np.asarray(Y), **opts)
    n, d = Xt.shape
    n_outputs = Yt.shape[1]
    params = {k: v.to(device) for k, v in _init(d, n_hidden, n_outputs, gen).items()}
    frozen_a = params.pop("a") if freeze_output_layer else None

    def full(p, Xb=Xt, Yb=Yt):
        q = p if frozen_a is None else {**p, "a": frozen_a}
        residual = predict(q, Xb, iota) - Yb
        return 0.5 * (residual * residual).sum(1).mean() + alpha * (p["W"] ** 2).sum()

    stochastic = None
    n_batches = 1
    if solver == "adam":
        bs = max(1, min(batch_size, n))
        n_batches = math.ceil(n / bs)
        order = {"epoch": -1, "perm": None}

        def stochastic(p, it):
            epoch, step = divmod(it, n_batches)
            if epoch != order["epoch"]:
                order["epoch"] = epoch
                order["perm"] = torch.randperm(n, generator=gen).to(device)
            idx = order["perm"][step * bs : (step + 1) * bs]
            return full(p, Xt[idx], Yt[idx])

    Xv = Yv = None
    if X_val is not None:
        Xv = torch.tensor(np.asarray(X_val), **opts)
        Yv = torch.tensor(np.asarray(Y_val), **opts)
        v_var = ((Yv - Yv.mean(0)) ** 2).sum().clamp_min(1e-300)
    state = {
        "best": math.inf,
        "stall": 0,
        "best_params": None,
        "scores": [],
        "best_score": None,
    }

    def callback(info):
        if info.n_iter % n_batches:
            return False
        if Xv is not None:
            with torch.no_grad():
                q = info.params if frozen_a is None else {**info.params, "a": frozen_a}
                r2 = 1.0 - float(((predict(q, Xv, iota) - Yv) ** 2).sum() / v_var)
            state["scores"].append(r2)
            value = -r2
        elif stochastic is not None:
            with torch.no_grad():  # the epoch's full objective, not a batch
                value = float(full(info.params))
        else:
            value = info.loss
        if value < state["best"] - tol * max(abs(state["best"]), 1.0):
            state["stall"] = 0
        else:
            state["stall"] += 1
        if value < state["best"]:
            state["best"] = value
            state["best_params"] = {k: v.clone() for k, v in info.params.items()}
            state["best_score"] = -value if Xv is not None else None
        if verbose >= 2 and (info.n_iter // n_batches) % 10 == 0:
            extra = f", validation R2 {-value:.4f}" if Xv is not None else ""
            print(f"  iter {info.n_iter // n_batches}: loss {info.loss:.6f}{extra}")
        return state["stall"] >= n_iter_no_change

    if lr is None:
        lr = {"adam": 1e-3, "lbfgs": 1.0}.get(solver, 0.5)
    res = minimize(
        full,
        params,
        method=solver,
        rho=tol,
        lr=lr,
        max_iter=max_iter * n_batches,
        stochastic_fun=stochastic,
        check_every=n_batches,
        generator=gen,
        callback=callback,
        max_lanczos=30,
    )
    final = res.params
    if Xv is not None and state["best_params"] is not None:
        final = state["best_params"]
    out = {k: v.detach().cpu().numpy() for k, v in final.items()}
    a = frozen_a.cpu().numpy() if frozen_a is not None else out["a"]
    stopped = "callback" in res.message
    if verbose:
        print(
            f"{solver}: {res.n_iter} iterations, final loss "
            f"{res.loss_curve[-1]:.6f}, {res.message}"
        )
    return NetworkResult(
        W=out["W"],
        b=out["b"],
        a=a,
        c=out["c"],
        n_iter=math.ceil(res.n_iter / n_batches),
        converged=res.converged or stopped,
        grad_norm=res.grad_norm,
        min_eig=res.min_eig,
        loss_curve=res.loss_curve[::n_batches] if n_batches > 1 else res.loss_curve,
        validation_scores=state["scores"],
        best_validation_score=state["best_score"],
        message=res.message,
    )
