"""`fastface import --order`: identity orders (sorted, a scripted os.listdir, a file) and the
pairing sanity check on hand-made embeddings."""
from __future__ import annotations

import numpy as np
import pytest

from fastface.sweeps.dataset import Dataset, IdentitySpec, PromptSpec
from fastface.evaluation.pairing import (PairingError, closer_to_own, identity_names_in_order, pairing_report,
                                         reorder)

NAMES = ["id_00", "id_01", "id_03", "id_12"]


def _dataset(tmp_path):
    ids = tuple(IdentitySpec(n, str(tmp_path / f"{n}.png")) for n in NAMES)  # sorted, as read_photos gives them
    return Dataset(ids, (PromptSpec("p1", "realistic"), PromptSpec("s; p2", "stylistic")), str(tmp_path))


def test_orders(tmp_path):
    ds = _dataset(tmp_path)
    assert identity_names_in_order(ds, "sorted") == NAMES
    ext4 = ["id_01.png", "notes.txt", "id_12.png", "id_03.png", "id_00.png"]  # a hashed directory order
    assert identity_names_in_order(ds, "listdir", listdir=lambda d: ext4) == ["id_01", "id_12", "id_03", "id_00"]
    # the pairs follow the order: image index 2 (identity block 1, prompt 0) is id_12's first prompt
    pairs = reorder(ds, "listdir", listdir=lambda d: ext4).pairs()
    assert [(i, ident.name, p.text) for i, ident, p in pairs][2:4] == [(2, "id_12", "p1"), (3, "id_12", "s; p2")]
    f = tmp_path / "order.txt"
    f.write_text("# the generating machine's listing\nid_03.png\nid_00\nid_12.png\nid_01.png\n")
    assert identity_names_in_order(ds, str(f)) == ["id_03", "id_00", "id_12", "id_01"]
    f.write_text("id_03\nid_00\nid_00\nid_99\n")
    with pytest.raises(PairingError, match=r"missing \['id_01', 'id_12'\]; unknown \['id_99'\]; repeated \['id_00'\]"):
        identity_names_in_order(ds, str(f))
    with pytest.raises(PairingError, match="not 'sorted', 'listdir' or an existing file"):
        identity_names_in_order(ds, "shuffled")


def test_closer_to_own_by_hand():
    sims = np.array([[0.6, 0.1, 0.2],
                     [0.3, 0.5, 0.5],    # a tie with another identity is not "closer"
                     [0.1, 0.2, 0.05]])
    np.testing.assert_array_equal(closer_to_own(sims, [0, 1, 2]), [True, False, False])
    np.testing.assert_array_equal(closer_to_own(sims, [0, 2, 1]), [True, False, True])


def test_pairing_report_warns_on_a_wrong_order_and_names_the_better_one():
    refs = {n: np.eye(4)[k] for k, n in enumerate(NAMES)}
    true = ["id_01", "id_12", "id_03", "id_00"]  # the order the images were generated in
    # 2 prompts per identity; each generated face is its true identity's direction plus a little noise
    rng = np.random.default_rng(0)
    emb = {i: refs[true[i // 2]] + 0.1 * rng.normal(size=4) for i in range(8)}
    wrong = pairing_report(emb, refs, NAMES, 2, "sorted", {"listdir": true})
    # sorted pairs id_03 correctly only (block 2 is id_03 in both orders): 2 of 8 closer to their own
    assert (wrong.n_closer, wrong.n_checked, wrong.n_identities) == (2, 8, 4) and wrong.warn
    assert wrong.alternatives == {"listdir": 1.0}
    text = "\n".join(wrong.lines())
    assert "WARNING" in text and "2/8 generated faces (25%)" in text and "--order listdir: 100%" in text
    right = pairing_report(emb, refs, true, 2, "listdir", {"sorted": NAMES})
    assert right.n_closer == 8 and not right.warn and "WARNING" not in "\n".join(right.lines())
    assert "needs reference faces" in pairing_report(emb, {"id_00": refs["id_00"]}, NAMES, 2, "sorted", {}).lines()[0]
