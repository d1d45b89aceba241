"""Constants of the domain, each defined once.

Everything that knows the telephone sample rate, the speaker roles, the emotion labels or the score bands
imports them from here, so a centre that changes one of them changes it in one place.
"""

from typing import Final

#: Telephone audio is 8 kHz; every reader resamples to this once, at the edge.
SAMPLE_RATE: Final = 8000

#: Speaker roles and the channel each occupies in a stereo recording.
AGENT: Final = "agent"
CUSTOMER: Final = "customer"
SPEAKERS: Final = (AGENT, CUSTOMER)
CHANNEL_OF: Final = {AGENT: 0, CUSTOMER: 1}

#: Emotion labels for speech-emotion recognition, in the order models index them.
EMOTIONS: Final = ("neutral", "happy", "angry", "sad", "surprise")

#: What a speech-emotion model reports when its calibrated confidence is below its threshold.
UNCERTAIN: Final = "uncertain"

#: Data splits. Test voices and sentence templates never appear in train.
SPLITS: Final = ("train", "dev", "test")

#: Why an inspection was made: routine sample, calibration session (everyone scores the call),
#: re-check of a flagged call, or the outcome of an agent's appeal.
INSPECTION_KINDS: Final = ("sample", "calibration", "recheck", "appeal")

#: Score bands (lower bound inclusive), best first. The rubric file may override them.
BANDS: Final = (("优秀", 90.0), ("良好", 80.0), ("合格", 60.0), ("不合格", 0.0))

#: Full marks of a scoring sheet.
FULL_MARKS: Final = 100.0
