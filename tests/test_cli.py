"""The command line: every subcommand end to end, and user mistakes."""

import subprocess
import sys
import warnings

import numpy as np
import pytest

from sklearn_derand.cli import main


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _field(out, name):
    """The first number printed after ``name`` on its line."""
    for line in out.splitlines():
        if line.startswith(name):
            return float(line[len(name) :].split()[0])
    raise AssertionError(f"{name!r} not in output:\n{out}")


@pytest.fixture
def cycle_graph(tmp_path):
    """An even cycle in rudy format: bipartite, the maximum cut is every edge."""
    n = 10
    lines = [f"{n} {n}"] + [f"{i + 1} {(i + 1) % n + 1} 1" for i in range(n)]
    path = tmp_path / "cycle.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_maxcut_prints_the_cut_and_writes_the_partition(capsys, cycle_graph, tmp_path):
    out_path = tmp_path / "sides.txt"
    code, out, err = _run(capsys, "maxcut", str(cycle_graph), "--output", str(out_path))
    assert code == 0, err
    assert _field(out, "nodes") == 10
    assert _field(out, "edges") == 10
    assert _field(out, "cut value") == 10
    assert _field(out, "SDP upper bound") >= 10 - 1e-6
    sides = np.loadtxt(out_path, dtype=int)
    assert sides.shape == (10,)
    # an even cycle is cut completely only by alternating sides
    assert np.all(sides[:-1] != sides[1:])


def _run_in_pseudo_terminal(argv):
    """Output of ``python -m sklearn_derand *argv`` run in a pseudo-terminal
    (whose window size is 0 x 0, as under ``script``)."""
    import os
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.execv(sys.executable, [sys.executable, "-m", "sklearn_derand", *argv])
    out = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out
    return out.decode()


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_progress_bar_on_a_terminal_and_none_when_piped(cycle_graph):
    out = _run_in_pseudo_terminal(["maxcut", str(cycle_graph)])
    # tqdm's bar, named after the subcommand and its phases, redrawn in place
    assert "\rmaxcut (SDP)" in out
    assert "\rmaxcut (rounding)" in out
    assert "it/s" in out or "s/it" in out
    assert "cut value" in out
    piped = subprocess.run(
        [sys.executable, "-m", "sklearn_derand", "maxcut", str(cycle_graph)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "maxcut (" not in piped.stdout + piped.stderr
    assert "\r" not in piped.stdout + piped.stderr


def test_maxcut_with_a_time_budget(capsys, cycle_graph):
    code, out, err = _run(capsys, "maxcut", str(cycle_graph), "--max-time", "0.5")
    assert code == 0, err
    assert _field(out, "cut value") == 10
    assert _field(out, "SDP upper bound") >= 10 - 1e-6
    code, _, err = _run(capsys, "maxcut", str(cycle_graph), "--max-time", "0")
    assert code == 2 and "max_time" in err


def test_maxcut_reads_an_edge_list_and_matrix_market(capsys, tmp_path):
    import scipy.io
    import scipy.sparse as sp

    edges = tmp_path / "triangle.edges"
    edges.write_text("# a triangle\n0 1\n1 2\n0 2\n")
    code, out, _ = _run(capsys, "maxcut", str(edges), "--no-local-search")
    assert code == 0
    assert _field(out, "cut value") == 2

    W = sp.coo_matrix(np.array([[0, 1.0], [1.0, 0]]))
    mtx = tmp_path / "edge.mtx"
    scipy.io.mmwrite(mtx, W)
    code, out, _ = _run(capsys, "maxcut", str(mtx), "--seed", "3", "--no-tabu")
    assert code == 0
    assert _field(out, "cut value") == 1
    code, out, _ = _run(capsys, "maxcut", str(edges), "--tabu-iter", "5")
    assert code == 0
    assert _field(out, "cut value") == 2


def test_jl_beats_the_gaussian_projection_and_writes_the_embedding(capsys, tmp_path):
    rng = np.random.RandomState(0)
    X = rng.randn(40, 30)
    data = tmp_path / "points.npy"
    np.save(data, X)
    out_path = tmp_path / "embedding.csv"
    code, out, err = _run(
        capsys, "jl", str(data), "--n-components", "8", "--output", str(out_path)
    )
    assert code == 0, err
    assert _field(out, "n_components_") == 8
    lines = [
        line for line in out.splitlines() if "distortion" in line or "Gaussian" in line
    ]
    learned = float(lines[0].split()[3])
    gaussian = float(lines[1].split()[0])
    assert learned < gaussian
    assert np.loadtxt(out_path, delimiter=",").shape == (40, 8)


def test_jl_reads_csv_with_a_header(capsys, tmp_path):
    rng = np.random.RandomState(1)
    X = rng.randn(25, 12)
    data = tmp_path / "points.csv"
    header = ",".join(f"f{j}" for j in range(12))
    np.savetxt(data, X, delimiter=",", header=header, comments="")
    code, out, err = _run(capsys, "jl", str(data), "--n-components", "4")
    assert code == 0, err
    assert _field(out, "points x features") == 25


def test_subspace_finds_the_index_direction(capsys, tmp_path):
    rng = np.random.RandomState(0)
    X = rng.randn(600, 5)
    y = np.tanh(2 * X[:, 2]) + 0.05 * rng.randn(600)
    data = tmp_path / "table.csv"
    header = "a,b,c,d,e,target"
    np.savetxt(data, np.column_stack([X, y]), delimiter=",", header=header, comments="")
    code, out, err = _run(
        capsys, "subspace", str(data), "--target", "target", "--n-components", "1"
    )
    assert code == 0, err
    assert _field(out, "held-out R^2") > 0.9
    assert _field(out, "subspace dimension") == 1
    # the largest entry of the single component is feature "c"
    row = next(line for line in out.splitlines() if line.strip().startswith("0:"))
    assert row.split()[1].startswith("c=")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["maxcut", "{tmp}/missing.txt"], "no such file"),
        (["maxcut", "{tmp}/garbage.txt"], "cannot read the graph"),
        (["jl", "{tmp}/missing.npy"], "no such file"),
        (["jl", "{tmp}/data.json"], "expected a .npy or .csv"),
        (["jl", "{tmp}/words.csv"], "column 'b' is not numeric"),
        (["jl", "{tmp}/bad.npy"], "not a readable .npy"),
        (["jl", "{tmp}/nums.csv", "--n-components", "x"], "--n-components"),
        (["jl", "{tmp}/nums.csv", "--n-components", "0"], "at least 1"),
        (["maxcut", "{tmp}/tri.txt", "--tabu-iter", "many"], "--tabu-iter"),
        (["subspace", "{tmp}/words.csv", "--target", "a"], "column 'b' is not numeric"),
        (["subspace", "{tmp}/nums.csv", "--target", "zz"], "no column 'zz'"),
        (["subspace", "{tmp}/noheader.csv", "--target", "a"], "header row"),
        (["maxcut", "{tmp}/tri.txt", "--output", "{tmp}/no/dir/x.txt"], "cannot write"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(capsys, tmp_path, argv, message):
    (tmp_path / "garbage.txt").write_text("this is not a graph\n")
    (tmp_path / "data.json").write_text("{}")
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    (tmp_path / "words.csv").write_text("a,b\n1,x\n2,y\n")
    (tmp_path / "nums.csv").write_text(
        "a,b\n" + "\n".join(f"{i},{i}" for i in range(12))
    )
    (tmp_path / "noheader.csv").write_text("1,2\n3,4\n")
    (tmp_path / "tri.txt").write_text("3 3\n1 2 1\n2 3 1\n1 3 1\n")
    argv = [arg.format(tmp=tmp_path) for arg in argv]
    code, _, err = _run(capsys, *argv)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_every_subcommand_has_help(capsys):
    for command in ["maxcut", "jl", "subspace", "demo"]:
        with pytest.raises(SystemExit) as exc:
            main([command, "--help"])
        assert exc.value.code == 0
        assert f"usage: sklearn-derand {command}" in capsys.readouterr().out


def test_python_dash_m_runs_the_cli():
    proc = subprocess.run(
        [sys.executable, "-m", "sklearn_derand", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0
    assert "maxcut" in proc.stdout and "demo" in proc.stdout


def test_demo_runs_all_three_beside_their_baselines(capsys):
    code, out, err = _run(capsys, "demo")
    assert code == 0, err
    lines = out.splitlines()
    jl = next(line for line in lines if "max pairwise distortion" in line)
    learned = float(jl.split("learned")[1].split()[0])
    best_gaussian = float(jl.split("best of 100 seeds")[1].split(",")[0])
    assert learned < best_gaussian
    cut_line = next(line for line in lines if line.strip().startswith("cut "))
    cut, bound = (
        float(cut_line.split()[1]),
        float(cut_line.split("bound")[1].split()[0]),
    )
    assert cut <= bound
    hyper = next(line for line in lines if "random hyperplanes" in line)
    assert cut >= float(hyper.split()[-1])
    sub = next(line for line in lines if "found a" in line)
    assert float(sub.split("=")[1].split()[0]) < 0.1


def test_subspace_prints_a_linear_baseline_and_warns_below_it(capsys, tmp_path):
    rng = np.random.RandomState(0)
    X = rng.randn(200, 3)
    y = rng.randn(200)  # no signal at all
    data = tmp_path / "noise.csv"
    np.savetxt(data, np.c_[X, y], delimiter=",", header="a,b,c,target", comments="")
    code, out, err = _run(capsys, "subspace", str(data), "--target", "target")
    assert code == 0, err
    score, baseline = _field(out, "held-out R^2"), _field(out, "linear baseline")
    assert ("warning: the network is not better" in out) == (score <= baseline)


@pytest.mark.parametrize("size", ["0", "1.5", "0.99", "-0.2"])
def test_subspace_rejects_test_sizes_that_leave_nothing(capsys, tmp_path, size):
    data = tmp_path / "d.csv"
    rng = np.random.RandomState(0)
    np.savetxt(data, rng.randn(40, 3), delimiter=",", header="a,b,t", comments="")
    code, _, err = _run(
        capsys, "subspace", str(data), "--target", "t", "--test-size", size
    )
    assert code == 2
    assert "--test-size" in err and "Traceback" not in err


def test_version_and_every_option_has_help(capsys):
    from sklearn_derand import __version__
    from sklearn_derand.cli import build_parser

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"sklearn-derand {__version__}"
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    for name, sub in subparsers.choices.items():
        for action in sub._actions:
            if action.dest != "help":
                assert action.help, f"{name} {action.option_strings or action.dest}"


def test_a_cold_kernel_cache_is_announced_once(capsys, tmp_path, monkeypatch):
    """In a fresh environment (an empty NUMBA_CACHE_DIR) the projector's
    kernels need compiling, and the jl command says so in one line; with the
    cache warm (this test session fitted the projector) it says nothing."""
    import os

    from sklearn_derand import DerandomizedJLProjector
    from sklearn_derand._sosp import _jl_kernels

    probe = (
        "from sklearn_derand._sosp import _jl_kernels as K; print(K.needs_compiling())"
    )
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "empty"))
    fresh = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True
    )
    assert fresh.stdout.strip() == "True", fresh.stderr
    X = np.random.RandomState(0).randn(40, 6)
    DerandomizedJLProjector(2, random_state=0, max_iter=5).fit(X)
    assert not _jl_kernels.needs_compiling()

    data = tmp_path / "points.npy"
    np.save(data, X)
    code, _, err = _run(capsys, "jl", str(data), "--n-components", "2")
    assert code == 0 and "compiling" not in err
    monkeypatch.setattr(_jl_kernels, "needs_compiling", lambda working_set=False: True)
    monkeypatch.setattr(_jl_kernels, "_NOTICE_GIVEN", {False: False, True: False})
    code, _, err = _run(capsys, "jl", str(data), "--n-components", "2")
    assert code == 0
    assert err.count("compiling the projector's kernels") == 1


def test_a_library_fit_announces_compiling_once(monkeypatch):
    """Outside the CLI the first fit that compiles says so in one warning;
    later fits of the process do not repeat it. A fit on a working set of
    pairs (above max_pairs) compiles other, fewer kernels and says so once
    too, with their own time."""
    from sklearn_derand import DerandomizedJLProjector
    from sklearn_derand._sosp import _jl_kernels

    cold = {False: True, True: True}
    monkeypatch.setattr(_jl_kernels, "needs_compiling", lambda ws=False: cold[ws])
    monkeypatch.setattr(_jl_kernels, "_NOTICE_GIVEN", {False: False, True: False})
    X = np.random.RandomState(0).randn(40, 6)

    def notices(**params):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(2):
                DerandomizedJLProjector(
                    2, random_state=0, max_iter=5, early_stopping=False, **params
                ).fit(X)
        return [
            str(w.message)
            for w in caught
            if "compiling the projector's kernels" in str(w.message)
        ]

    dense = notices()
    assert len(dense) == 1 and "once" in dense[0] and "about 30 s" in dense[0]
    working = notices(max_pairs=100)  # 780 pairs: a working set
    assert len(working) == 1 and "about 5 s" in working[0]
    cold[False] = False  # a warm cache says nothing
    monkeypatch.setattr(_jl_kernels, "_NOTICE_GIVEN", {False: False, True: True})
    assert notices() == []
