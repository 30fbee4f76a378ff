"""Tiny copies of the official data-set layouts, made of short videos encoded with PyAV.

Every ``make_*`` function builds one layout under ``root`` (which it creates) and returns the path
to pass as a source's root. Each video layout holds, besides ordinary videos, the files that break
decoders in the wild: a corrupt file (random bytes), a zero-length file and a video shorter than
8 frames. Their keys are in :data:`EXPECTED` so that tests of ``prepare`` know what its skip report
must name. Videos are 32x24 (width x height) unless said otherwise, with a bright square sliding
over a seeded background, so frames differ from each other and from video to video.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

# Container suffix -> encoder. mpeg4 is in every FFmpeg build PyAV ships with; WebM only takes VPx.
_ENCODERS = {".avi": "mpeg4", ".mp4": "mpeg4", ".mkv": "mpeg4", ".mov": "mpeg4",
             ".webm": "libvpx"}
FRAMES = 12      # an ordinary fixture video
SHORT_FRAMES = 5  # fewer than the protocol's 8 frames
HEIGHT, WIDTH = 24, 32


@dataclass(frozen=True)
class Expected:
    """What a source must list for a fixture layout (keys are the listing's keys)."""

    classes: tuple[str, ...]
    train: int
    val: int
    corrupt: tuple[str, ...] = ()    # random bytes
    empty: tuple[str, ...] = ()      # zero bytes (an empty folder for rawframes)
    short: tuple[str, ...] = ()      # fewer than 8 frames
    missing: int = 0                 # named by the annotations, absent on disk


def video_frames(frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """(frames, height, width, 3) uint8: a square moving one pixel a frame over a flat colour."""
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 160, size=3, dtype=np.uint8)
    colour = rng.integers(170, 256, size=3, dtype=np.uint8)
    side = max(4, min(height, width) // 3)
    top = int(rng.integers(0, height - side + 1))
    out = np.empty((frames, height, width, 3), dtype=np.uint8)
    out[:] = background
    for t in range(frames):
        left = (t * 2 + seed) % (width - side + 1)
        out[t, top:top + side, left:left + side] = colour
    return out


def encode_video(path: str | Path, frames: int, height: int = HEIGHT, width: int = WIDTH,
                 fps: int = 25, seed: int = 0) -> Path:
    """Encode ``frames`` frames of :func:`video_frames` to ``path``; the suffix picks the codec."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = _ENCODERS.get(path.suffix.lower(), "mpeg4")
    pixels = video_frames(frames, height, width, seed)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        # High quality keeps decoded pixels close to what was encoded, so tests may compare them.
        if codec == "mpeg4":
            stream.options = {"qscale": "2"}
        else:
            stream.bit_rate = 2_000_000
        for image in pixels:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_corrupt(path: str | Path, size: int = 4096, seed: int = 0) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())
    return path


def write_empty(path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


# -- UCF101 ---------------------------------------------------------------------------------------

UCF101_CLASSES = ("ApplyEyeMakeup", "Basketball", "HandstandPushups")


def make_ucf101(root: str | Path) -> Path:
    """``root/UCF-101/<Class>/v_<Class>_gXX_cYY.avi`` and ``root/ucfTrainTestlist/``; returns root.

    ``HandstandPushups`` holds ``v_HandStandPushups_*`` files (as the real download does) and one
    list line names its file in yet another case. Train: g08, g09 of each class plus a corrupt
    ``ApplyEyeMakeup`` g10 and an empty ``Basketball`` g10; test: g01 of each class plus a short
    ``Basketball`` g02.
    """
    root = Path(root)
    videos = root / "UCF-101"
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True, exist_ok=True)
    train, test = [], []
    seed = 0
    for index, cls in enumerate(UCF101_CLASSES, start=1):
        stem = "HandStandPushups" if cls == "HandstandPushups" else cls
        for group, side in (("08", train), ("09", train), ("01", test)):
            name = f"v_{stem}_g{group}_c01.avi"
            encode_video(videos / cls / name, FRAMES, seed=seed)
            seed += 1
            listed = name.lower() if (cls == "HandstandPushups" and group == "09") else name
            side.append(f"{cls}/{listed} {index}" if side is train else f"{cls}/{listed}")
    write_corrupt(videos / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g10_c01.avi")
    train.append("ApplyEyeMakeup/v_ApplyEyeMakeup_g10_c01.avi 1")
    write_empty(videos / "Basketball" / "v_Basketball_g10_c01.avi")
    train.append("Basketball/v_Basketball_g10_c01.avi 2")
    encode_video(videos / "Basketball" / "v_Basketball_g02_c01.avi", SHORT_FRAMES, seed=99)
    test.append("Basketball/v_Basketball_g02_c01.avi")
    # CRLF line ends, as the official lists have.
    (lists / "classInd.txt").write_bytes(
        "".join(f"{i} {c}\r\n" for i, c in enumerate(UCF101_CLASSES, 1)).encode())
    (lists / "trainlist01.txt").write_bytes("".join(f"{line}\r\n" for line in train).encode())
    (lists / "testlist01.txt").write_bytes("".join(f"{line}\r\n" for line in test).encode())
    return root


# -- HMDB51 ---------------------------------------------------------------------------------------

HMDB51_CLASSES = ("brush_hair", "cartwheel", "catch")


def make_hmdb51(root: str | Path) -> Path:
    """``root/<class>/<video>.avi`` with split files
    ``root/testTrainMulti_7030_splits/<class>_test_split1.txt``; returns root. Per class: two
    train videos (1), one test video (2), one unused video (0). ``brush_hair`` adds a corrupt
    train file, ``cartwheel`` an empty train file, ``catch`` a short test video."""
    root = Path(root)
    splits = root / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True, exist_ok=True)
    seed = 100
    for cls in HMDB51_CLASSES:
        lines = []
        for k, side in enumerate((1, 1, 2, 0)):
            name = f"Video_{cls}_u_nm_np1_fr_goo_{k}.avi"
            encode_video(root / cls / name, FRAMES, seed=seed)
            seed += 1
            lines.append(f"{name} {side} ")
        special = {"brush_hair": ("corrupt", 1), "cartwheel": ("empty", 1), "catch": ("short", 2)}
        what, side = special[cls]
        name = f"Video_{cls}_{what}_goo_9.avi"
        if what == "corrupt":
            write_corrupt(root / cls / name, seed=1)
        elif what == "empty":
            write_empty(root / cls / name)
        else:
            encode_video(root / cls / name, SHORT_FRAMES, seed=seed)
        lines.append(f"{name} {side} ")
        (splits / f"{cls}_test_split1.txt").write_text("\n".join(lines) + "\n")
        # Splits 2 and 3 exist in the download; only split 1 is read.
        (splits / f"{cls}_test_split2.txt").write_text("\n".join(lines) + "\n")
    return root


# -- Kinetics-400 ---------------------------------------------------------------------------------

KINETICS_CLASSES = ("abseiling", "air drumming", "zumba")


def make_kinetics400(root: str | Path) -> Path:
    """Videos ``<youtube_id>_<start:06d>_<end:06d>.<ext>`` (train in ``train/<label>/``, validation
    flat in ``val/``) and ``annotations/{train,validate}.csv``; returns root. Per class: two train
    and one validation video on disk; two CSV rows have no video (missing). Extensions mix mp4,
    mkv, webm and avi; a corrupt and an empty train file and a short validation video are added.
    16x16 pixels."""
    root = Path(root)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    rows = {"train": [], "val": []}
    seed = 200
    exts = ["mp4", "mkv", "webm", "avi"]
    for ci, label in enumerate(KINETICS_CLASSES):
        for k, split in enumerate(("train", "train", "val")):
            ytid = f"{label[:3]}{ci}{k}_x-Yz0"[:11].ljust(11, "q")
            start = 10 * (k + 1)
            ext = exts[(ci + k) % len(exts)]
            name = f"{ytid}_{start:06d}_{start + 10:06d}.{ext}"
            folder = root / "train" / label if split == "train" else root / "val"
            encode_video(folder / name, FRAMES, 16, 16, seed=seed)
            seed += 1
            rows[split].append((label, ytid, start, start + 10))
    rows["train"].append(("abseiling", "goneGONE001", 5, 15))
    rows["val"].append(("zumba", "goneGONE002", 0, 10))
    write_corrupt(root / "train" / "zumba" / "corruptvid1_000000_000010.mp4", seed=2)
    rows["train"].append(("zumba", "corruptvid1", 0, 10))
    write_empty(root / "train" / "abseiling" / "emptyvideo1_000001_000011.mp4")
    rows["train"].append(("abseiling", "emptyvideo1", 1, 11))
    encode_video(root / "val" / "shortvideo1_000002_000012.mp4", SHORT_FRAMES, 16, 16, seed=299)
    rows["val"].append(("air drumming", "shortvideo1", 2, 12))
    for split, file in (("train", "train.csv"), ("val", "validate.csv")):
        lines = ["label,youtube_id,time_start,time_end,split"]
        # Labels with a space are quoted, as in the official CSVs.
        lines += [f'"{lab}",{yt},{s},{e},{split}' if " " in lab else f"{lab},{yt},{s},{e},{split}"
                  for lab, yt, s, e in rows[split]]
        (root / "annotations" / file).write_text("\n".join(lines) + "\n")
    return root


# -- Something-Something v2 -----------------------------------------------------------------------

SSV2_CLASSES = ("Holding something next to something", "Pushing something from left to right",
                "Putting something on a surface")


def make_ssv2(root: str | Path) -> Path:
    """``root/20bn-something-something-v2/<id>.webm`` and ``root/labels/*.json``; returns root.
    Two train and one validation video per class, plus a corrupt train, an empty train and a short
    validation video; a test list that must be ignored. 16x16 VP8."""
    root = Path(root)
    videos = root / "20bn-something-something-v2"
    labels = root / "labels"
    labels.mkdir(parents=True, exist_ok=True)
    templates = ("Holding [something] next to [something]",
                 "Pushing [something] from left to right",
                 "Putting [something] on a surface")
    # The labels file's order (its index strings) is not alphabetical on purpose.
    order = {SSV2_CLASSES[2]: "0", SSV2_CLASSES[0]: "1", SSV2_CLASSES[1]: "2"}
    (labels / "something-something-v2-labels.json").write_text(json.dumps(order, indent=1))
    entries = {"train": [], "validation": []}
    vid, seed = 1000, 300
    for template in templates:
        for split in ("train", "train", "validation"):
            encode_video(videos / f"{vid}.webm", FRAMES, 16, 16, seed=seed)
            entries[split].append({"id": str(vid), "label": template.replace("[", "").lower(),
                                   "template": template, "placeholders": ["a cup"]})
            vid, seed = vid + 1, seed + 1
    write_corrupt(videos / "2001.webm", seed=3)
    entries["train"].append({"id": "2001", "label": "x", "template": templates[0],
                             "placeholders": ["x"]})
    write_empty(videos / "2002.webm")
    entries["train"].append({"id": "2002", "label": "x", "template": templates[1],
                             "placeholders": ["x"]})
    encode_video(videos / "2003.webm", SHORT_FRAMES, 16, 16, seed=399)
    entries["validation"].append({"id": "2003", "label": "x", "template": templates[2],
                                  "placeholders": ["x"]})
    for split, items in entries.items():
        (labels / f"something-something-v2-{split}.json").write_text(json.dumps(items))
    encode_video(videos / "3001.webm", FRAMES, 16, 16, seed=398)
    (labels / "something-something-v2-test.json").write_text(json.dumps([{"id": "3001"}]))
    return root


# -- a plain folder of videos ---------------------------------------------------------------------

FOLDER_CLASSES = ("Boxing", "Walking", "handwaving")
FOLDER_FPS = 10
FOLDER_FRAMES = 20  # 2 s at 10 fps, so clip_seconds=0.5 cuts each recording into 4 clips


def make_folder(root: str | Path) -> Path:
    """``root/<class>/personNN_<class>_d1.avi`` for persons 01-04 in each class (20 frames at
    10 fps = 2 s); file names are lower case while two class folders are capitalised. Person 05
    adds a corrupt ``Boxing`` file, an empty ``Walking`` file and a short ``handwaving`` video; a
    README.txt in a class folder is not a video. Returns root."""
    root = Path(root)
    seed = 400
    for cls in FOLDER_CLASSES:
        for person in range(1, 5):
            encode_video(root / cls / f"person{person:02d}_{cls.lower()}_d1.avi", FOLDER_FRAMES,
                         fps=FOLDER_FPS, seed=seed)
            seed += 1
    write_corrupt(root / "Boxing" / "person05_boxing_d1.avi", seed=4)
    write_empty(root / "Walking" / "person05_walking_d1.avi")
    encode_video(root / "handwaving" / "person05_handwaving_d1.avi", SHORT_FRAMES,
                 fps=FOLDER_FPS, seed=499)
    (root / "Boxing" / "README.txt").write_text("not a video\n")
    return root


# -- mmaction rawframes ---------------------------------------------------------------------------

RAWFRAMES_CLASSES = ("jump", "run", "sit")


def write_frames(folder: str | Path, frames: int, height: int = HEIGHT, width: int = WIDTH,
                 seed: int = 0) -> Path:
    """``folder/img_00001.jpg`` ... as mmaction's build_rawframes writes them."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for t, image in enumerate(video_frames(frames, height, width, seed), start=1):
        Image.fromarray(image).save(folder / f"img_{t:05d}.jpg", quality=95)
    return folder


def make_rawframes(root: str | Path) -> Path:
    """``root/rawframes/<class>/<video>/img_00001.jpg`` with mmaction lists ``root/train_list.txt``
    and ``root/val_list.txt`` (lines ``<class>/<video> <num_frames> <label>``, paths relative to
    ``root/rawframes``) and ``root/classes.txt``. Two train and one val video per class, plus an
    empty train folder, a short val folder and a list line naming an absent folder. Returns root."""
    root = Path(root)
    frames_root = root / "rawframes"
    lines = {"train": [], "val": []}
    seed = 500
    for label, cls in enumerate(RAWFRAMES_CLASSES):
        for k, split in enumerate(("train", "train", "val")):
            rel = f"{cls}/v_{cls}_{k:02d}"
            write_frames(frames_root / rel, FRAMES, seed=seed)
            seed += 1
            lines[split].append(f"{rel} {FRAMES} {label}")
    (frames_root / "run" / "v_run_empty").mkdir(parents=True)
    lines["train"].append("run/v_run_empty 0 1")
    write_frames(frames_root / "sit" / "v_sit_short", SHORT_FRAMES, seed=599)
    lines["val"].append(f"sit/v_sit_short {SHORT_FRAMES} 2")
    lines["val"].append(f"jump/v_jump_gone {FRAMES} 0")
    for split in ("train", "val"):
        (root / f"{split}_list.txt").write_text("\n".join(lines[split]) + "\n")
    (root / "classes.txt").write_text("\n".join(RAWFRAMES_CLASSES) + "\n")
    return root


EXPECTED = {
    "ucf101": Expected(
        classes=UCF101_CLASSES, train=8, val=4,
        corrupt=("ApplyEyeMakeup/v_ApplyEyeMakeup_g10_c01.avi",),
        empty=("Basketball/v_Basketball_g10_c01.avi",),
        short=("Basketball/v_Basketball_g02_c01.avi",)),
    "hmdb51": Expected(
        classes=HMDB51_CLASSES, train=8, val=4,
        corrupt=("brush_hair/Video_brush_hair_corrupt_goo_9.avi",),
        empty=("cartwheel/Video_cartwheel_empty_goo_9.avi",),
        short=("catch/Video_catch_short_goo_9.avi",)),
    "kinetics400": Expected(
        classes=KINETICS_CLASSES, train=8, val=4,
        corrupt=("zumba/corruptvid1_000000_000010",),
        empty=("abseiling/emptyvideo1_000001_000011",),
        short=("air drumming/shortvideo1_000002_000012",), missing=2),
    "ssv2": Expected(
        classes=(SSV2_CLASSES[2], SSV2_CLASSES[0], SSV2_CLASSES[1]), train=8, val=4,
        corrupt=("2001",), empty=("2002",), short=("2003",)),
    "folder": Expected(
        classes=FOLDER_CLASSES, train=0, val=0,  # depend on the split options
        corrupt=("Boxing/person05_boxing_d1.avi",),
        empty=("Walking/person05_walking_d1.avi",),
        short=("handwaving/person05_handwaving_d1.avi",)),
    "rawframes": Expected(
        classes=RAWFRAMES_CLASSES, train=7, val=4,
        empty=("run/v_run_empty",), short=("sit/v_sit_short",), missing=1),
}
