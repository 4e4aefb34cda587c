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
from sklearn_derand._sosp.curvature import certify
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
    diverged: bool = False
    certificate_samples: int = 0


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


# Every pass over the data runs over chunks of rows whose hidden activations
# (and their gradients) take about this many bytes, so no temporary grows
# with n.
CHUNK_BYTES = 32 * 2**20
# Fits on more rows than this certify (grad_norm, min_eig) the objective on a
# random subsample of this many rows: a Lanczos run costs some dozens of
# Hessian-vector products, each a double-backward pass over its rows.
CERTIFICATE_SAMPLES = 20_000


def chunk_rows(n_hidden, n_features):
    """Rows per chunk of a pass over the data (see ``CHUNK_BYTES``)."""
    return max(64, CHUNK_BYTES // (8 * (4 * n_hidden + n_features + 4)))


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
    train=None,
    validation=None,
    warmup_epochs=0,
    warmup_lr=3e-3,
    lr_decays=0,
    init=None,
    seed=0,
    device="cpu",
    verbose=0,
):
    """Train the network on (X, Y) (numpy, Y of shape (n, n_outputs)).

    ``train`` and ``validation`` are optional row indices: the rows the
    objective is over (all rows when None) and the rows whose R^2 picks the
    iterate kept. Rows are gathered a chunk at a time, so a split costs no
    copy of X. With ``warmup_epochs`` a full-batch solver starts from the
    point reached by that many epochs of minibatch Adam (``batch_size``,
    ``warmup_lr``); they count neither in ``n_iter`` nor in the loss curve.
    ``init`` (a dict of numpy ``W, b, a, c``) replaces the random start.

    Full-batch solvers ("lbfgs", "pgd", "hessian_descent", "gd") minimise
    ``0.5 mean ||Y - y_hat||^2 + alpha ||W||^2`` directly; "adam" takes
    minibatch steps (``max_iter`` counts epochs) and evaluates the full
    objective once per epoch for the stopping rule and the certificate.
    Every full pass (value, gradient, Hessian-vector products, validation)
    runs over chunks of ``chunk_rows`` rows. With validation rows, the
    iterate with the best validation R^2 is kept and training stops after
    ``n_iter_no_change`` checks without an improvement of ``tol``;
    otherwise it stops when the training objective stalls the same way, or
    at a certified SOSP.
    """
    opts = {"dtype": torch.float64, "device": device}
    gen = make_generator(seed)
    Xt = _as_tensor(X, device)
    Yt = _as_tensor(Y, device)
    d = Xt.shape[1]
    n_outputs = Yt.shape[1]
    params = {k: v.to(device) for k, v in _init(d, n_hidden, n_outputs, gen).items()}
    if init is not None:  # a warm start (numpy W, b, a, c)
        params = {k: torch.as_tensor(init[k], **opts).clone() for k in params}
    frozen_a = params.pop("a") if freeze_output_layer else None
    rows = chunk_rows(n_hidden, d)

    def with_a(p):
        return p if frozen_a is None else {**p, "a": frozen_a}

    def chunks(index, size=rows):
        """(X, Y) chunks of the rows ``index`` (all rows when None)."""
        n_rows = Xt.shape[0] if index is None else len(index)
        for lo in range(0, n_rows, size):
            if index is None:
                yield Xt[lo : lo + size], Yt[lo : lo + size]
            else:
                idx = index[lo : lo + size]
                yield Xt[idx], Yt[idx]

    train_idx = None if train is None else torch.as_tensor(train, device=device)
    n = Xt.shape[0] if train_idx is None else len(train_idx)

    def squared_error(q, Xb, Yb):
        residual = predict(q, Xb, iota) - Yb
        return 0.5 * (residual * residual).sum()

    def ridge(p):
        return alpha * (p["W"] ** 2).sum()

    def full(p):
        """The objective, one chunk at a time (its value only)."""
        q = with_a(p)
        with torch.no_grad():
            total = sum(squared_error(q, Xb, Yb) for Xb, Yb in chunks(train_idx))
            return total / n + ridge(p)

    def full_value_and_grad(p):
        """The objective and its gradient, summed over chunks (closed form)."""
        value, grads = _summed_over_chunks(with_a(p), chunks(train_idx), iota, n)
        return _with_ridge(p, value, {k: grads[k] for k in p}, alpha)

    # The certificate's objective: the training rows, or a random subsample
    # of CERTIFICATE_SAMPLES of them (mean squared error over the subsample
    # plus the same ridge).
    cert_idx = train_idx
    if n > CERTIFICATE_SAMPLES:
        pick = torch.randperm(n, generator=gen)[:CERTIFICATE_SAMPLES].sort().values
        pick = pick.to(device)
        cert_idx = pick if train_idx is None else train_idx[pick]
    cert_n = n if cert_idx is train_idx else CERTIFICATE_SAMPLES
    cert_chunks = list(chunks(cert_idx))

    def certificate_part(k):
        Xb, Yb = cert_chunks[k]

        def part(p):
            value = squared_error(with_a(p), Xb, Yb) / cert_n
            return value + ridge(p) if k == 0 else value

        return part

    certificate_parts = [certificate_part(k) for k in range(len(cert_chunks))]

    stochastic = None
    n_batches = 1
    if solver == "adam" or warmup_epochs:
        bs = max(1, min(batch_size, n))
        n_batches = math.ceil(n / bs)
        order = {"epoch": -1, "perm": None}

        def stochastic(p, it):
            """The minibatch objective and its gradient (closed form)."""
            epoch, step = divmod(it, n_batches)
            if epoch != order["epoch"]:
                order["epoch"] = epoch
                order["perm"] = torch.randperm(n, generator=gen).to(device)
                if train_idx is not None:
                    order["perm"] = train_idx[order["perm"]]
            idx = order["perm"][step * bs : (step + 1) * bs]
            value, grads = _squared_error_and_grads(
                with_a(p), Xt[idx], Yt[idx], iota, len(idx)
            )
            return _with_ridge(p, value, grads, alpha)

    val_idx = None
    if validation is not None:
        val_idx = torch.as_tensor(validation, device=device)
        Yv = Yt[val_idx]
        v_var = ((Yv - Yv.mean(0)) ** 2).sum().clamp_min(1e-300)
    state = {
        "best": math.inf,
        "stall": 0,
        "best_params": None,
        "scores": [],
        "best_score": None,
        "decays": 0,
        "factor": 1.0,
    }
    lr_patience = max(2, n_iter_no_change // 3)

    def callback(info):
        if info.n_iter % n_batches:
            return False
        if val_idx is not None:
            q = with_a(info.params)
            with torch.no_grad():
                sse = sum(2.0 * squared_error(q, Xb, Yb) for Xb, Yb in chunks(val_idx))
            r2 = 1.0 - float(sse / v_var)
            state["scores"].append(r2)
            value = -r2
        elif stochastic is not None:
            value = float(full(info.params))  # the epoch's full objective
        else:
            value = info.loss
        if value < state["best"] - tol * max(abs(state["best"]), 1.0):
            state["stall"] = 0
        else:
            state["stall"] += 1
        if value < state["best"]:
            state["best"] = value
            state["best_params"] = {k: v.clone() for k, v in info.params.items()}
            state["best_score"] = -value if val_idx is not None else None
        if (
            stochastic is not None
            and state["stall"] >= lr_patience
            and state["decays"] < lr_decays
        ):
            # Adam's noise floor, not the model, stalls the objective: a
            # tenth of the step size lowers it (ReduceLROnPlateau).
            state["decays"] += 1
            state["factor"] /= 10.0
            state["stall"] = 0
        if verbose >= 2 and (info.n_iter // n_batches) % 10 == 0:
            extra = f", validation R2 {-value:.4f}" if val_idx is not None else ""
            print(f"  iter {info.n_iter // n_batches}: loss {info.loss:.6f}{extra}")
        return state["stall"] >= n_iter_no_change

    if warmup_epochs and solver != "adam":
        # Minibatch Adam epochs from the random start, then the full-batch
        # solver from where they ended: a few cheap epochs do most of the
        # descent on many rows, the full-batch steps the precise end.
        warm = minimize(
            full,
            params,
            method="adam",
            rho=tol,
            lr=warmup_lr,
            max_iter=warmup_epochs * n_batches,
            stochastic_value_and_grad=stochastic,
            # no full pass per epoch: the warm-up is never certified
            check_every=warmup_epochs * n_batches + 1,
            generator=gen,
            value_and_grad=full_value_and_grad,
            certify_at_end=False,
        )
        if _finite(warm.params) and float(full(warm.params)) < float(full(params)):
            params = warm.params
        if verbose:
            loss = float(full(params))
            print(f"adam warm-up: {warmup_epochs} epochs, loss {loss:.6f}")
        stochastic, n_batches = None, 1
    if lr is None:
        lr = {"adam": 1e-3, "lbfgs": 1.0}.get(solver, 0.5)
    res = minimize(
        full,
        params,
        method=solver,
        rho=tol,
        lr=lr,
        max_iter=max_iter * n_batches,
        stochastic_value_and_grad=stochastic,
        check_every=n_batches,
        generator=gen,
        callback=callback,
        max_lanczos=30,
        value_and_grad=full_value_and_grad,
        certificate_parts=certificate_parts,
        lr_schedule=lambda it: state["factor"],
    )
    final = res.params
    stopped = "callback" in res.message
    settled = True  # the returned point is where the run ended up
    grad_norm, min_eig, message = res.grad_norm, res.min_eig, res.message
    if n_batches > 1 and message.startswith("reached max_iter"):
        message = f"reached max_iter={max_iter} epochs without a certified SOSP"
    if state["best_params"] is None:
        raise ValueError(
            "The training objective is not finite at the initial point "
            f"({res.loss_curve[0] if res.loss_curve else math.nan}): the inputs "
            "or targets are too large for the network. Standardise X (for "
            "example with StandardScaler) and keep y finite."
        )
    if val_idx is not None:
        final = state["best_params"]
    else:
        with torch.no_grad():
            final_value = float(full(final)) if _finite(final) else math.inf
        if not final_value <= state["best"] + tol * max(abs(state["best"]), 1.0):
            # The objective rose (a step size too large for the problem, or a
            # divergence to non-finite values): return the best iterate and
            # do not call the run converged.
            settled = False
            message = (
                f"the objective rose from {state['best']:.6g} (best, kept) to "
                f"{final_value:.6g}; the learning rate may be too large"
            )
            final = state["best_params"]
            cert = certify(
                full, final, tol, max_lanczos=30, generator=gen, parts=certificate_parts
            )
            grad_norm, min_eig = cert.grad_norm, cert.min_eig
    out = {k: v.detach().cpu().numpy() for k, v in final.items()}
    a = frozen_a.cpu().numpy() if frozen_a is not None else out["a"]
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
        converged=settled and (res.converged or stopped),
        grad_norm=grad_norm,
        min_eig=min_eig,
        loss_curve=res.loss_curve[::n_batches] if n_batches > 1 else res.loss_curve,
        validation_scores=state["scores"],
        best_validation_score=state["best_score"],
        message=message,
        diverged=not settled,
        certificate_samples=cert_n,
    )


def _squared_error_and_grads(params, X, Y, iota, count):
    """``0.5 sum ||Y - y_hat||^2 / count`` on (X, Y) and its gradient with
    respect to each parameter, in closed form (no autograd graph: one
    forward and three matrix products per call).

    With ``Z = iota (X W^T + b)``, ``H = softplus(Z) / iota`` and
    ``R = (H a + c - Y) / count``: ``grad a = H^T R``, ``grad c = sum R``,
    ``grad W = (R a^T * sigmoid(Z))^T X`` and ``grad b`` its column sums
    (``Z`` is ``X W^T + b`` in the code, scaled by iota in place at the end).
    Only the parameters in ``params`` get a gradient key except ``a``,
    which always has one (dropped by the caller when it is frozen).
    """
    W, b, a, c = params["W"], params["b"], params["a"], params["c"]
    Z = torch.addmm(b, X, W.T)
    # softplus(iota z) / iota; above iota z = 40 it is z to float64
    # precision (log1p(e^-40) = 4e-18), so the threshold changes no bit that
    # matters and the value equals smoothed_relu's.
    H = torch.nn.functional.softplus(Z, beta=iota, threshold=40.0)
    R = torch.addmm(c, H, a).sub_(Y)
    value = 0.5 * (R * R).sum() / count
    R.div_(count)
    dZ = (R @ a.T).mul_(torch.sigmoid(Z.mul_(iota)))
    grads = {"W": dZ.T @ X, "b": dZ.sum(0), "a": H.T @ R, "c": R.sum(0)}
    return value, {k: grads[k] for k in params}


def _summed_over_chunks(params, chunks, iota, count):
    """:func:`_squared_error_and_grads` summed over ``(X, Y)`` chunks."""
    value, grads = 0.0, None
    for Xb, Yb in chunks:
        part, part_grads = _squared_error_and_grads(params, Xb, Yb, iota, count)
        value = value + part
        if grads is None:
            grads = part_grads
        else:
            for k, g in grads.items():
                g += part_grads[k]
    return value, grads


def _with_ridge(params, value, grads, alpha):
    """Add ``alpha ||W||^2`` and its gradient to a data term."""
    W = params["W"]
    grads["W"] = grads["W"] + 2.0 * alpha * W
    return value + alpha * (W * W).sum(), grads


def _as_tensor(array, device):
    """A float64 tensor sharing the array's memory where it can (a writeable
    float64 array on the CPU), else a copy."""
    array = np.require(array, dtype=np.float64, requirements=["W"])
    return torch.as_tensor(array).to(device)


def _finite(params):
    return all(bool(torch.isfinite(v).all()) for v in params.values())


def adam_pass(
    state,
    X,
    Y,
    *,
    n_hidden,
    alpha,
    iota,
    lr,
    batch_size,
    freeze_output_layer,
    seed,
    device="cpu",
    betas=(0.9, 0.999),
    eps=1e-8,
):
    """One epoch of minibatch Adam over (X, Y), continuing from ``state``.

    The out-of-core step behind ``partial_fit``: ``state`` is None (a fresh
    start, initialised from ``seed``), a dict of the parameters ``W, b, a,
    c`` alone (a start from a fitted network, with fresh moments), or the
    dict this function returned last time, of numpy arrays: the parameters,
    Adam's moments ``m_<name>``, ``v_<name>`` and the step count ``t``. Batches
    are drawn in a random order from ``seed``. Returns the new state, the
    objective on (X, Y) after the pass and its gradient norm there (both
    over the rows given, computed in chunks).
    """
    opts = {"dtype": torch.float64, "device": device}
    gen = make_generator(seed)
    Xt = _as_tensor(X, device)
    Yt = _as_tensor(Y, device)
    n, d = Xt.shape
    if state is None:
        state = {k: v.numpy() for k, v in _init(d, n_hidden, Yt.shape[1], gen).items()}
    if "t" not in state:  # parameters only: Adam starts afresh
        state = {k: np.asarray(state[k], dtype=np.float64) for k in "Wbac"}
        for name in "Wbac":
            state[f"m_{name}"] = np.zeros_like(state[name])
            state[f"v_{name}"] = np.zeros_like(state[name])
        state["t"] = 0
    names = ["W", "b", "c"] if freeze_output_layer else ["W", "b", "a", "c"]
    params = {
        k: torch.as_tensor(state[k], **opts).clone() for k in ("W", "b", "a", "c")
    }
    m = {k: torch.as_tensor(state[f"m_{k}"], **opts).clone() for k in names}
    v = {k: torch.as_tensor(state[f"v_{k}"], **opts).clone() for k in names}
    t = int(state["t"])
    bs = max(1, min(batch_size, n))
    order = torch.randperm(n, generator=gen).to(device)
    for lo in range(0, n, bs):
        idx = order[lo : lo + bs]
        _, grads = _with_ridge(
            params,
            *_squared_error_and_grads(params, Xt[idx], Yt[idx], iota, len(idx)),
            alpha,
        )
        t += 1
        for k in names:
            m[k].mul_(betas[0]).add_(grads[k], alpha=1.0 - betas[0])
            v[k].mul_(betas[1]).addcmul_(grads[k], grads[k], value=1.0 - betas[1])
            m_hat = m[k] / (1.0 - betas[0] ** t)
            v_hat = v[k] / (1.0 - betas[1] ** t)
            params[k] -= lr * m_hat / (v_hat.sqrt() + eps)
    rows = chunk_rows(n_hidden, d)
    pieces = ((Xt[lo : lo + rows], Yt[lo : lo + rows]) for lo in range(0, n, rows))
    value, grads = _with_ridge(
        params, *_summed_over_chunks(params, pieces, iota, n), alpha
    )
    grad_norm = math.sqrt(sum(float((grads[k] ** 2).sum()) for k in names))
    new = {k: p.cpu().numpy() for k, p in params.items()}
    for k in names:
        new[f"m_{k}"] = m[k].cpu().numpy()
        new[f"v_{k}"] = v[k].cpu().numpy()
    if freeze_output_layer:
        new["m_a"], new["v_a"] = state["m_a"], state["v_a"]
    new["t"] = t
    return new, float(value), grad_norm
