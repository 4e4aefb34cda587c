"""Hostile and unusual inputs: never a silent wrong answer, never a traceback.

One table per reader and estimator; each case asserts the class of the
outcome: the right exception with a message naming the problem, or the
correct answer.
"""

import warnings

import networkx as nx
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from sklearn_derand import (
    DerandomizedJLProjector,
    DerandomizedMaxCut,
    StructuredTwoLayerRegressor,
    max_pairwise_distortion,
)
from sklearn_derand.cli import main
from sklearn_derand.datasets import load_graph

# -- graph readers ------------------------------------------------------------------

TRIANGLE_GSET = "3 2\n1 2 1\n2 3 1\n"


@pytest.mark.parametrize(
    ("text", "kwargs", "shape", "total_weight"),
    [
        (TRIANGLE_GSET, {}, (3, 3), 2.0),
        ("3 2\n# a comment\n1 2 1\n2 3 1\n", {}, (3, 3), 2.0),
        ("3 2\n1 2 1  # trailing comment\n2 3 1\n", {}, (3, 3), 2.0),
        ("\ufeff" + TRIANGLE_GSET, {}, (3, 3), 2.0),  # UTF-8 byte-order mark
        ("5 1\n1 2 1\n", {}, (5, 5), 1.0),  # isolated nodes from the header
        ("0 1\n1 2\n", {}, (3, 3), 2.0),  # unweighted 0-based edge list
        ("3 5\n1 2 1\n2 3 1\n", {"format": "edgelist"}, (6, 6), 3.0),
    ],
)
def test_graph_files_read_as_what_they_are(tmp_path, text, kwargs, shape, total_weight):
    path = tmp_path / "g.txt"
    path.write_text(text, encoding="utf-8")
    W = load_graph(path, **kwargs)
    assert W.shape == shape
    assert W.sum() / 2 == pytest.approx(total_weight)
    assert (W != W.T).nnz == 0


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        # A Gset header whose edge count disagrees with the lines present is
        # never read as an edge list with the header as its first edge.
        ("3 5\n1 2 1\n2 3 1\n", {}, "announcing 5 edges, but 2 edge lines"),
        ("3 5\n1 2 1\n2 3 1\n", {"format": "gset"}, "announces 5 edges"),
        ("3 2\n1.7 2 1\n2 3 1\n", {}, "line 2: node ids must be integers"),
        ("3 2\n1 2 1\n2 3 1 7\n", {"format": "gset"}, "line 3: Gset edge lines"),
        ("0 1.5\n1 2\n", {}, "line 1: node ids must be integers"),
        ("0 1 1 2\n", {}, r"line 1: expected 'u v \[weight\]'"),
        ("3 2\n1 2 nan\n2 3 1\n", {}, "line 2: the weight must be finite"),
        ("3 2\n1 2 x\n2 3 1\n", {"format": "gset"}, "line 2: the weight must be a"),
        ("3 2\n1 4 1\n2 3 1\n", {}, "line 2: node ids must lie in 1..3"),
        ("-3 2\n1 2 1\n2 3 1\n", {"format": "gset"}, "two non-negative integers"),
        ("3 x\n1 2 1\n", {"format": "gset"}, "two non-negative integers"),
        ("7\n", {"format": "gset"}, "two non-negative integers"),
        ("2000000000 1\n1 2 1\n", {}, "refusing to allocate"),
        ("0 2000000000\n", {}, "refusing to allocate"),
        ("0 9223372036854775808\n", {}, "node ids must lie in"),
        ("# only a comment\n", {}, "empty"),
    ],
)
def test_graph_file_mistakes_are_errors_naming_the_line(
    tmp_path, text, kwargs, message
):
    path = tmp_path / "g.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as info:
        load_graph(path, **kwargs)
    assert str(path) in str(info.value)


def test_matrix_market_header_size_is_checked_before_reading(tmp_path):
    path = tmp_path / "huge.mtx"
    path.write_text(
        "%%MatrixMarket matrix coordinate real general\n"
        "2000000000 2000000000 1\n1 2 1\n"
    )
    with pytest.raises(ValueError, match="refusing to allocate"):
        load_graph(path)


def test_a_directory_is_not_reported_as_missing(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a directory"):
        load_graph(tmp_path)


# -- DerandomizedJLProjector: scale ---------------------------------------------


@pytest.mark.parametrize("scale", [1e-50, 1e-45, 1e-30, 1e39, 1e300])
def test_jl_is_scale_invariant_far_from_unit_scale(scale):
    """Distortion does not depend on the data's scale: tiny values must not
    underflow (float32) into a map that was never fitted, huge ones must not
    overflow."""
    rng = np.random.RandomState(0)
    X = rng.rand(20, 8)
    ref = DerandomizedJLProjector(4, random_state=0).fit(X)
    est = DerandomizedJLProjector(4, random_state=0).fit(X * scale)
    real = max_pairwise_distortion(X * scale, est.transform(X * scale))
    assert np.isfinite(real)
    assert est.distortion_ == pytest.approx(real, rel=1e-5, abs=1e-6)
    assert est.distortion_ == pytest.approx(ref.distortion_, rel=1e-3)
    assert est.score(X * scale) == pytest.approx(-real, rel=1e-6)


def test_max_pairwise_distortion_at_extreme_scales():
    X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    for scale in (1e-200, 1.0, 1e200):
        assert max_pairwise_distortion(X * scale, 1.1 * X * scale) == pytest.approx(
            0.21
        )


# -- StructuredTwoLayerRegressor: no silent divergence ------------------------------


def _regression_data():
    rng = np.random.RandomState(0)
    X = rng.randn(200, 4)
    return X, np.tanh(X[:, 0])


def test_regressor_with_huge_targets_is_finite_and_scale_free():
    X, y = _regression_data()
    ref = StructuredTwoLayerRegressor(n_hidden=8, random_state=0).fit(X, y)
    big = StructuredTwoLayerRegressor(n_hidden=8, random_state=0).fit(X, y * 1e200)
    assert np.all(np.isfinite(big.y_scale_)) and np.all(np.isfinite(big.y_mean_))
    pred = big.predict(X)
    assert np.all(np.isfinite(pred))
    assert big.score(X, y * 1e200) == pytest.approx(ref.score(X, y), abs=1e-3)


@pytest.mark.parametrize(
    "params",
    [
        {"solver": "adam", "learning_rate": 1e6, "max_iter": 15},
        {"solver": "gd", "learning_rate": 1e6, "max_iter": 15},
    ],
)
def test_regressor_divergence_warns_and_keeps_the_best_iterate(params):
    X, y = _regression_data()
    est = StructuredTwoLayerRegressor(n_hidden=8, random_state=0, **params)
    with pytest.warns(ConvergenceWarning, match="objective rose"):
        est.fit(X, y)
    assert not est.converged_
    assert all(np.all(np.isfinite(c)) for c in est.coefs_ + est.intercepts_)
    assert np.isfinite(est.score(X, y))
    assert np.all(np.isfinite(est.components_))


def test_regressor_refuses_inputs_too_large_for_the_network():
    X, y = _regression_data()
    X = X.copy()
    X[0, 0] = 1e300
    with pytest.raises(ValueError, match="not finite at the initial point"):
        StructuredTwoLayerRegressor(n_hidden=8, random_state=0).fit(X, y)


# -- DerandomizedMaxCut: graphs ------------------------------------------------------


def test_directed_graph_is_treated_as_the_asymmetric_matrix():
    G = nx.DiGraph()
    G.add_weighted_edges_from([(0, 1, 3.0), (1, 0, 4.0), (1, 2, 1.0), (2, 0, 2.0)])
    A = nx.to_numpy_array(G)
    with pytest.warns(UserWarning, match="not symmetric"):
        from_graph = DerandomizedMaxCut(random_state=0).fit(G)
    with pytest.warns(UserWarning, match="not symmetric"):
        from_matrix = DerandomizedMaxCut(random_state=0).fit(A)
    assert from_graph.cut_value_ == from_matrix.cut_value_ == 4.5
    with pytest.warns(UserWarning, match="not symmetric"):
        assert from_graph.score(G) == from_matrix.cut_value_


@pytest.mark.parametrize("weight", ["heavy", None, [1.0]])
def test_non_numeric_edge_weights_name_the_edge(weight):
    G = nx.Graph()
    G.add_edge("a", "b", weight=weight)
    G.add_edge("b", "c")
    with pytest.raises(ValueError, match=r"Edge \('a', 'b'\) has weight"):
        DerandomizedMaxCut().fit(G)


@pytest.mark.parametrize("n", [6, 60])
def test_all_negative_graph_has_zero_gap(n):
    A = -np.ones((n, n))
    np.fill_diagonal(A, 0.0)
    est = DerandomizedMaxCut(random_state=0).fit(A)
    assert est.cut_value_ == 0.0
    assert est.upper_bound_ >= est.cut_value_
    assert est.gap_ == 0.0


# -- command line ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["jl", "{tmp}/complex.npy"], "complex"),
        (["maxcut", "{tmp}/nan.txt"], "weight must be finite"),
        (["maxcut", "{tmp}/tri.txt", "--n-init", "0"], "n_init"),
        (["maxcut", "{tmp}/tri.txt", "--alpha", "-1"], "alpha"),
        (["maxcut", "{tmp}/tri.txt", "--alpha", "nan"], "alpha"),
        (["maxcut", "{tmp}/tri.txt", "--seed", "-1"], "random_state"),
        (["maxcut", "{tmp}/short_header.txt"], "announcing 5 edges"),
        (["maxcut", "{tmp}/one_token.txt", "--format", "gset"], "two non-negative"),
        (["maxcut", "{tmp}/huge_id.txt"], "node ids must lie in"),
        (["maxcut", "{tmp}/tri.txt", "--output", "{tmp}/tri.txt"], "refusing to"),
        (["maxcut", "{tmp}/tri.txt", "--output", "{tmp}/sides.json"], ".npy, .csv"),
        (["maxcut", "{tmp}", "--format", "gset"], "is a directory"),
        (["jl", "{tmp}/complex.npy", "--output", "{tmp}"], "is a directory"),
        (["subspace", "{tmp}/dup.csv", "--target", "x"], "repeated column names y"),
    ],
)
def test_cli_rejects_bad_input_in_one_line(capsys, tmp_path, argv, message):
    np.save(tmp_path / "complex.npy", np.ones((5, 3)) * (1 + 2j))
    (tmp_path / "nan.txt").write_text("3 2\n1 2 nan\n2 3 1\n")
    (tmp_path / "tri.txt").write_text("3 3\n1 2 1\n2 3 1\n1 3 1\n")
    (tmp_path / "short_header.txt").write_text("3 5\n1 2 1\n2 3 1\n")
    (tmp_path / "one_token.txt").write_text("3\n1 2 1\n")
    (tmp_path / "huge_id.txt").write_text(f"0 {2**63}\n")
    (tmp_path / "dup.csv").write_text(
        "x,y,y\n" + "\n".join(f"{i},{i % 3},{i % 5}" for i in range(20))
    )
    argv = [arg.format(tmp=tmp_path) for arg in argv]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(argv)
    _, err = capsys.readouterr()
    assert code == 2, err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


@pytest.mark.parametrize("scale", [1e-200, 1e200, 1e300])
def test_maxcut_small_graph_with_extreme_weights(scale):
    """The cvxpy path sees W / max|W|: weights near the float64 limits give
    the same cut (scaled) instead of a solver panic."""
    rng = np.random.RandomState(0)
    A = np.triu(rng.rand(12, 12) < 0.5, 1) * rng.uniform(0.5, 2.0, (12, 12))
    A = A + A.T
    ref = DerandomizedMaxCut(random_state=0).fit(A)
    est = DerandomizedMaxCut(random_state=0).fit(A * scale)
    np.testing.assert_array_equal(est.labels_, ref.labels_)
    assert est.cut_value_ == pytest.approx(ref.cut_value_ * scale, rel=1e-9)
    assert est.upper_bound_ >= est.cut_value_


# -- an interrupted fit leaves the estimator as it was ---------------------------------


@pytest.mark.parametrize(
    ("make", "target", "data"),
    [
        (
            lambda: StructuredTwoLayerRegressor(n_hidden=4, random_state=0),
            "sklearn_derand._sosp.network.minimize",
            "regression",
        ),
        (
            lambda: DerandomizedMaxCut(random_state=0),
            "sklearn_derand._sosp.maxcut.derandomized_rounding",
            "graph",
        ),
        (
            lambda: DerandomizedJLProjector(3, random_state=0),
            "sklearn_derand._sosp.jl.fit_projection",
            "points",
        ),
    ],
)
@pytest.mark.parametrize("as_numba_error", [False, True])
def test_interrupted_fit_restores_the_estimator(
    monkeypatch, make, target, data, as_numba_error
):
    X, y = _regression_data()
    inputs = {
        "regression": (X, y),
        "graph": (np.ones((6, 6)) - np.eye(6),),
        "points": (X,),
    }[data]
    est = make()
    fitted = make().fit(*inputs)

    def interrupt(*args, **kwargs):
        if not as_numba_error:
            raise KeyboardInterrupt
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:  # what Ctrl-C in a numba kernel looks like
            raise SystemError("CPUDispatcher returned a result with an exception set")

    module, name = target.rsplit(".", 1)
    import importlib

    monkeypatch.setattr(importlib.import_module(module), name, interrupt)
    for model in (est, fitted):
        before = dict(model.__dict__)
        with pytest.raises(KeyboardInterrupt):
            model.fit(*inputs)
        assert model.__dict__.keys() == before.keys()
        for key, value in before.items():
            assert model.__dict__[key] is value


def test_cli_writes_exactly_the_output_path_it_prints(capsys, tmp_path):
    graph = tmp_path / "tri.txt"
    graph.write_text("3 3\n1 2 1\n2 3 1\n1 3 1\n")
    for name in ("sides.NPY", "sides.txt"):
        out_path = tmp_path / name
        assert main(["maxcut", str(graph), "--output", str(out_path)]) == 0
        out, _ = capsys.readouterr()
        assert out_path.is_file()
        assert not (tmp_path / f"{name}.npy").exists()
        line = next(row for row in out.splitlines() if row.startswith("partition"))
        assert str(out_path) in line
        assert ("numpy" in line) == name.endswith("NPY")
    assert np.load(tmp_path / "sides.NPY").shape == (3,)


# -- clear messages ---------------------------------------------------------------


def test_jl_messages_name_the_mistake():
    X = np.random.RandomState(0).rand(30, 6)
    with pytest.raises(ValueError, match="n_components must be a positive int"):
        DerandomizedJLProjector(True).fit(X)
    est = DerandomizedJLProjector(3, random_state=0).fit(X)
    with pytest.raises(ValueError, match="expects n_components_=3"):
        est.inverse_transform(np.ones((2, 4)))
    assert est.inverse_transform(est.transform(X)).shape == X.shape


@pytest.mark.parametrize("max_iter", [1, 2, 3, 7])
def test_jl_max_iter_bounds_n_iter(max_iter):
    from sklearn_derand._sosp.jl import _stage_budgets

    assert sum(_stage_budgets(max_iter)) == max_iter
    X = np.random.RandomState(0).rand(30, 6)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = DerandomizedJLProjector(3, max_iter=max_iter, random_state=0).fit(X)
    assert est.n_iter_ <= max_iter
    for warning in caught:
        if issubclass(warning.category, ConvergenceWarning):
            # one number of iterations in the message: the caller's
            assert f"max_iter={max_iter} " in str(warning.message)
            assert "reached max_iter=" not in str(warning.message)
