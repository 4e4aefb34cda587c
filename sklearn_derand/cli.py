"""The ``sklearn-derand`` command line (also ``python -m sklearn_derand``)."""

import argparse
import sys

__all__ = ["main"]


def _demo(args):
    """Escape a strict saddle and collapse the noise scale of the paper's toy."""
    import torch

    from sklearn_derand._sosp import (
        expectation,
        gaussian_nodes,
        make_generator,
        minimize,
        smoothed_relu,
    )

    print("SOSP backend: escaping the strict saddle of x^2/2 + y^4/4 - y^2/2")
    print("started exactly at the saddle (0, 0), rho = 1e-6")

    def saddle(p):
        x, y = p["z"][0], p["z"][1]
        return x**2 / 2 + y**4 / 4 - y**2 / 2

    print(f"{'method':<18}{'certified':>10}{'iters':>7}{'HVPs':>6}  end point")
    for method in ("gd", "pgd", "hessian_descent", "adam"):
        res = minimize(
            saddle,
            {"z": torch.zeros(2, dtype=torch.float64)},
            method=method,
            rho=1e-6,
            max_iter=2000,
            lr=0.05 if method == "adam" else 0.1,
            generator=make_generator(args.seed),
        )
        z = res.params["z"].numpy().round(6) + 0.0
        print(f"{method:<18}{res.converged!s:>10}{res.n_iter:>7}{res.n_hvp:>6}  {z}")

    print(
        "\nThe paper's toy f(w, b) = E[(ReLU_i(wx + b)^3 - 1)^2] + lam w^2,"
        " x ~ N(0, 1), from w = 1:"
    )
    nodes = gaussian_nodes(1, 80, method="gauss-hermite")
    print(f"{'lambda':>8}{'w (b trained)':>16}{'w (b = 0)':>12}")
    for lam in (1e-4, 1e-2, 0.3, 1.0):
        row = []
        for train_bias in (True, False):

            def fun(p, lam=lam, train_bias=train_bias):
                b = p["b"] if train_bias else torch.zeros(1, dtype=torch.float64)
                inner = smoothed_relu(p["w"] * nodes.nodes[:, 0] + b, 10.0)
                return (
                    expectation(lambda _: (inner**3 - 1) ** 2, nodes)
                    + lam * p["w"] ** 2
                ).sum()

            params = {"w": torch.ones(1, dtype=torch.float64)}
            if train_bias:
                params["b"] = torch.zeros(1, dtype=torch.float64)
            res = minimize(
                fun,
                params,
                method="hessian_descent",
                rho=1e-8,
                max_iter=20000,
                lr=0.02,
                generator=make_generator(args.seed),
            )
            row.append(float(res.params["w"]))
        print(f"{lam:>8g}{row[0]:>16.2e}{row[1]:>12.3f}")
    print(
        "With the bias trained, every certified SOSP has w ~ 0 "
        "(the derandomization lemma)."
    )
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="sklearn-derand",
        description="Derandomization by second-order stationary points.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo", help="run the built-in demonstration", description=_demo.__doc__
    )
    demo.add_argument("--seed", type=int, default=0, help="random seed")
    demo.set_defaults(func=_demo)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
