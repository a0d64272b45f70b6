"""Property tests: a typo always changes a name, keeps its first letter, and stays short."""

from hypothesis import given
from hypothesis import strategies as st

from candour.synth.corruption import typo

unit = st.floats(min_value=0.0, max_value=0.999999)


@given(
    st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'-", min_size=2, max_size=20
    ),
    unit,
    unit,
    unit,
)
def test_typo_changes_name_but_not_first_letter(name: str, u: float, v: float, w: float):
    changed = typo(name, u, v, w)
    assert changed != name
    assert changed[0] == name[0]
    assert abs(len(changed) - len(name)) <= 1
