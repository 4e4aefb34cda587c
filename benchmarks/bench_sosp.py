"""Benchmark of the SOSP backend against scipy's second-order methods.

For each test problem (all started exactly at a strict saddle, except the
lemma problem) print, per method: whether it ended at a certified SOSP, the
final objective, gradient norm, smallest Hessian eigenvalue (dense eigvalsh,
independent of our Lanczos), iterations, gradient evaluations, Hessian-vector
products and wall time. Baselines in the same run:

* scipy.optimize ``trust-krylov`` and ``newton-cg`` with exact gradients and
  Hessian-vector products (they stop at the saddle: the gradient is zero);
* PGD with Jin et al.'s original stopping rule (perturb, wait ``t_thres``
  steps, stop if f fell by less than ``f_thres``), to show what the Lanczos
  certificate saves.

Run: ``python benchmarks/bench_sosp.py``
"""

import math
import time

import numpy as np
import torch
from scipy.optimize import minimize as scipy_minimize

from sklearn_derand._sosp import (
    expectation,
    gaussian_nodes,
    hessian_vector_product,
    make_generator,
    minimize,
)


def strict_saddle():
    def fun(p):
        x, y = p["x"][0], p["x"][1]
        return x**2 / 2 + y**4 / 4 - y**2 / 2

    return "saddle x^2/2+y^4/4-y^2/2", fun, torch.zeros(2, dtype=torch.float64)


def factorisation(n=30, r=3):
    g = torch.Generator().manual_seed(0)
    B = torch.randn(n, r, generator=g, dtype=torch.float64) / math.sqrt(n)
    M = B @ B.T

    def fun(p):
        U = p["x"].view(n, r)
        return ((U @ U.T - M) ** 2).sum()

    return f"||UU^T-M||^2 n={n} r={r}", fun, torch.zeros(n * r, dtype=torch.float64)


def lemma_problem(lam=0.05):
    nodes = gaussian_nodes(2, 10, method="gauss-hermite")

    def fun(p):
        W, b = p["x"][:4].view(2, 2), p["x"][4:]
        u = nodes.nodes @ W.T + b
        g = ((u**2 - 1) ** 2).sum(dim=1) / 4 + 0.3 * u[:, 0] * u[:, 1]
        return expectation(lambda _: g, nodes) + lam * (W**2).sum()

    x0 = torch.randn(6, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    return f"lemma E[g(Wx+b)]+{lam}||W||^2", fun, x0


def dense_min_eig(fun, x):
    H = torch.autograd.functional.hessian(lambda z: fun({"x": z}), x)
    return float(np.linalg.eigvalsh(H.numpy())[0])


def grad_norm(fun, x):
    _, g, _ = hessian_vector_product(lambda z: fun({"x": z}), x)
    return float(torch.linalg.vector_norm(g))


def run_ours(fun, x0, method, rho, lr):
    res = minimize(
        fun,
        {"x": x0},
        method=method,
        rho=rho,
        lr=lr,
        max_iter=5_000 if method == "gd" else 50_000,
        generator=make_generator(0),
    )
    x = res.params["x"]
    return {
        "ok": res.converged,
        "x": x,
        "iters": res.n_iter,
        "grads": res.n_grad,
        "hvps": res.n_hvp,
        "time": res.time,
    }


def run_scipy(fun, x0, method):
    counts = {"grads": 0, "hvps": 0}

    def f(z):
        return float(fun({"x": torch.as_tensor(z)}))

    def jac(z):
        counts["grads"] += 1
        _, g, _ = hessian_vector_product(lambda t: fun({"x": t}), torch.as_tensor(z))
        return g.numpy()

    def hessp(z, v):
        counts["hvps"] += 1
        _, _, hvp = hessian_vector_product(lambda t: fun({"x": t}), torch.as_tensor(z))
        return hvp(torch.as_tensor(v)).numpy()

    start = time.perf_counter()
    res = scipy_minimize(
        f,
        x0.numpy(),
        jac=jac,
        hessp=hessp,
        method=method,
        options={"gtol": 1e-8} if method == "trust-krylov" else {"xtol": 1e-10},
    )
    elapsed = time.perf_counter() - start
    return {
        "ok": None,
        "x": torch.as_tensor(res.x),
        "iters": res.nit,
        "grads": counts["grads"],
        "hvps": counts["hvps"],
        "time": elapsed,
    }


def run_jin_pgd(fun, x0, rho, lr, t_thres=200, f_thres=1e-10, radius=None):
    """PGD with the original stopping rule of Jin et al. (2017)."""
    gen = make_generator(0)
    radius = rho if radius is None else radius
    x = x0.clone()
    t_noise = -t_thres - 1
    x_noise = f_noise = None
    grads = 0
    start = time.perf_counter()
    for t in range(1_000_000):
        f, g, _ = hessian_vector_product(lambda z: fun({"x": z}), x)
        grads += 1
        if x_noise is not None and t - t_noise == t_thres:
            if float(f) - f_noise > -f_thres:
                x = x_noise
                break
        if float(torch.linalg.vector_norm(g)) <= rho and t - t_noise > t_thres:
            x_noise, f_noise, t_noise = x.clone(), float(f), t
            d = torch.randn(x.numel(), generator=gen, dtype=torch.float64)
            u = float(torch.rand(1, generator=gen, dtype=torch.float64))
            x = x + radius * u ** (1 / x.numel()) * d / torch.linalg.vector_norm(d)
            continue
        x = x - lr * g
    return {
        "ok": None,
        "x": x,
        "iters": t,
        "grads": grads,
        "hvps": 0,
        "time": time.perf_counter() - start,
    }


def main():
    rho = 1e-6
    problems = [(strict_saddle(), 0.1), (factorisation(), 0.05), (lemma_problem(), 0.1)]
    header = (
        f"{'method':<28}{'SOSP':>6}{'f':>12}{'|grad|':>10}{'lam_min':>10}"
        f"{'iters':>8}{'grads':>8}{'HVPs':>7}{'time s':>9}"
    )
    for (name, fun, x0), lr in problems:
        print(
            f"\n== {name}  (rho={rho:g}, start: "
            f"{'strict saddle' if float(x0.abs().sum()) == 0 else 'random'})"
        )
        print(header)
        rows = []
        for method in ("gd", "pgd", "hessian_descent", "adam"):
            rows.append(
                (
                    method,
                    run_ours(fun, x0, method, rho, 0.02 if method == "adam" else lr),
                )
            )
        rows.append(("pgd (Jin, t_thres=200)", run_jin_pgd(fun, x0, rho, lr)))
        # The wait that guarantees escaping curvature -sqrt(K rho) (K = 1)
        # from a perturbation of radius rho: log(1/rho) / (lr sqrt(rho)).
        t_theory = math.ceil(math.log(1 / rho) / (lr * math.sqrt(rho)))
        rows.append(
            (
                f"pgd (Jin, t_thres={t_theory})",
                run_jin_pgd(fun, x0, rho, lr, t_thres=t_theory),
            )
        )
        for method in ("trust-krylov", "newton-cg"):
            rows.append((f"scipy {method}", run_scipy(fun, x0, method)))
        for label, r in rows:
            lam = dense_min_eig(fun, r["x"])
            gn = grad_norm(fun, r["x"])
            is_sosp = gn <= rho and lam >= -math.sqrt(rho)
            claimed = "" if r["ok"] is None else ("*" if r["ok"] else "")
            print(
                f"{label:<28}{('yes' if is_sosp else 'NO') + claimed:>6}"
                f"{float(fun({'x': r['x']})):>12.3e}{gn:>10.1e}{lam:>10.3f}"
                f"{r['iters']:>8}{r['grads']:>8}{r['hvps']:>7}{r['time']:>9.3f}"
            )
    print(
        "\nSOSP: checked independently (gradient norm and dense eigvalsh);"
        " '*' marks runs that also certified it themselves."
    )


if __name__ == "__main__":
    main()
