"""Chemistry of the ``moldesign`` scenario: a generated search space, xTB, fingerprints, a model.

TaPS's moldesign searches QM9 (a file from GitHub, not reachable here). A seeded generator
stands in: random QM9-like molecules (up to 9 heavy atoms of C, N, O and F) grown atom by atom
under valence limits, with optional ring closures and double bonds, kept when RDKit sanitizes
them, deduplicated by canonical SMILES.

The ionization energy is TaPS's ``compute_vertical``: an RDKit conformer, relaxed with GFN2-xTB
through ASE (LBFGS line search, fmax 0.02 eV/Å, at most 250 steps), then the same geometry with
a total charge of +1. ASE reports energies in eV (TaPS labels them Ha).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np

VALENCE = {"C": 4, "N": 3, "O": 2, "F": 1}
ELEMENTS, WEIGHTS = ("C", "N", "O", "F"), (0.62, 0.16, 0.18, 0.04)


def search_space(size: int, seed: int, max_atoms: int = 9) -> list[str]:
    """``size`` distinct canonical SMILES of random small molecules, the same for a seed."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")  # type: ignore[attr-defined]  # rejects would each warn
    rng = random.Random(seed)
    found: dict[str, None] = {}
    attempts = 0
    while len(found) < size:
        attempts += 1
        if attempts > 200 * size:
            raise RuntimeError(f"generated only {len(found)} of {size} distinct molecules")
        smiles = _random_molecule(rng, rng.randint(3, max_atoms), Chem)
        if smiles is not None:
            found.setdefault(smiles, None)
    return list(found)


def _random_molecule(rng: random.Random, atoms: int, chem: Any) -> str | None:
    mol = chem.RWMol()
    free: list[int] = []
    neighbours: list[set[int]] = []
    for i in range(atoms):
        element = rng.choices(ELEMENTS, WEIGHTS)[0]
        open_atoms = [j for j in range(i) if free[j] > 0]
        if i and not open_atoms:
            break
        mol.AddAtom(chem.Atom(element))
        free.append(VALENCE[element])
        neighbours.append(set())
        if i:
            j = rng.choice(open_atoms)
            _bond(mol, chem, i, j, free, neighbours)
    n = mol.GetNumAtoms()
    for _ in range(rng.choice((0, 0, 1, 1, 2))):  # ring closures
        pairs = [
            (a, b)
            for a in range(n)
            for b in range(a + 2, n)
            if free[a] and free[b] and b not in neighbours[a]
        ]
        if pairs:
            _bond(mol, chem, *rng.choice(pairs), free, neighbours)
    for bond in list(mol.GetBonds()):  # some double bonds
        a, b = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        if free[a] and free[b] and rng.random() < 0.2:
            bond.SetBondType(chem.BondType.DOUBLE)
            free[a] -= 1
            free[b] -= 1
    try:
        chem.SanitizeMol(mol)
    except Exception:  # RDKit raises several types for a chemically impossible graph
        return None
    smiles = chem.MolToSmiles(mol)
    return smiles if "." not in smiles else None


def _bond(mol: Any, chem: Any, a: int, b: int, free: list[int], nb: list[set[int]]) -> None:
    mol.AddBond(a, b, chem.BondType.SINGLE)
    free[a] -= 1
    free[b] -= 1
    nb[a].add(b)
    nb[b].add(a)


def compute_vertical(smiles: str) -> float:
    """Vertical ionization energy (eV) with GFN2-xTB: E(+1) − E(0) at the neutral minimum."""
    from ase import Atoms
    from ase.optimize import LBFGSLineSearch
    from rdkit import Chem
    from rdkit.Chem import AllChem
    from threadpoolctl import threadpool_limits
    from xtb.ase.calculator import XTB

    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    if AllChem.EmbedMolecule(mol, randomSeed=1) != 0:  # type: ignore[attr-defined]
        raise ValueError(f"RDKit could not embed {smiles} in 3-D")
    AllChem.MMFFOptimizeMolecule(mol)  # type: ignore[attr-defined]
    atoms = Atoms(
        numbers=[a.GetAtomicNum() for a in mol.GetAtoms()],
        positions=mol.GetConformer().GetPositions(),
    )
    with threadpool_limits(1):  # one core per task: the executor runs the others
        atoms.calc = XTB(method="GFN2-xTB", accuracy=0.05)
        LBFGSLineSearch(atoms, logfile=None).run(fmax=0.02, steps=250)
        neutral = float(atoms.get_potential_energy())
        atoms.set_initial_charges(np.full(len(atoms), 1 / len(atoms)))  # total charge +1
        charged = float(atoms.get_potential_energy())
    return charged - neutral


def fingerprints(smiles: list[str], length: int = 256, radius: int = 4) -> np.ndarray:
    """Morgan fingerprints as a boolean matrix, one row per molecule."""
    from rdkit import Chem
    from rdkit.Chem import rdFingerprintGenerator

    generator = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=length)
    return np.array(
        [generator.GetFingerprintAsNumPy(Chem.MolFromSmiles(s)).astype(bool) for s in smiles]
    )


class IonizationModel:
    """TaPS's surrogate: k nearest neighbours by Jaccard distance between fingerprints."""

    def __init__(self, smiles: list[str], energies: list[float]) -> None:
        from sklearn.neighbors import KNeighborsRegressor

        self.model = KNeighborsRegressor(
            n_neighbors=min(4, len(smiles)), weights="distance", metric="jaccard"
        ).fit(fingerprints(smiles), energies)

    def predict(self, smiles: list[str]) -> np.ndarray:
        """Predicted ionization energies (eV)."""
        return np.asarray(self.model.predict(fingerprints(smiles)))


def train_model(smiles: list[str], energies: list[float]) -> IonizationModel:
    """Fit the surrogate on the molecules computed so far."""
    return IonizationModel(smiles, energies)


def run_model(model: IonizationModel, smiles: list[str]) -> list[tuple[str, float]]:
    """Predictions for one chunk of the search space."""
    return list(zip(smiles, model.predict(smiles).tolist(), strict=True))


def combine_inferences(*chunks: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Every chunk's predictions, in order."""
    return [row for chunk in chunks for row in chunk]
