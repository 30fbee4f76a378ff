"""An undeclared track is answered by number and with the tracks there are, not by spelling."""

import pytest

from vdcbench.core.errors import UnknownNameError
from vdcbench.protocol import LATEST_VERSION, load_protocol

P = load_protocol(LATEST_VERSION)


def test_ipc0_is_not_told_ipc10_and_hears_which_tracks_exist():
    with pytest.raises(UnknownNameError) as err:
        P.track("synthetic", "ipc0-t8")
    message = str(err.value)
    assert "ipc10-t8'?" not in message and "did you mean" not in message
    assert "the protocol's tracks are ipc1-t8, ipc5-t8, ipc10-t8 (official)" in message
    assert "ipc4-t8" in message and "(temporal)" in message


def test_an_ipc_between_tracks_is_told_the_nearest_at_its_frames():
    with pytest.raises(UnknownNameError, match=r"did you mean 'ipc4-t8'\? the protocol's tracks"):
        P.track("synthetic", "ipc3-t8")
    with pytest.raises(UnknownNameError, match=r"did you mean 'ipc10-t8'\?"):
        P.track("synthetic", "ipc40-t8")


def test_a_frame_count_without_tracks_gets_no_guess():
    with pytest.raises(UnknownNameError) as err:
        P.track("synthetic", "ipc1-t5")
    assert "did you mean" not in str(err.value) and "ipc1-t32" in str(err.value)
