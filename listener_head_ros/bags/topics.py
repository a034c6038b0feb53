"""The topics of an evaluation bag, as the converter writes them and the evaluation reads them."""

AUDIO_TOPIC = '/audio/audio'  # audio_common_msgs/AudioData (or AudioDataStamped)
AUDIO_INFO_TOPIC = '/audio/audio_info'  # audio_common_msgs/AudioInfo
TRUTH_TOPIC = '/listener/head_pose_truth'  # listener_head_ros/HeadPose, the listener's head
TURN_TOPIC = '/speaker_turn'  # std_msgs/String, JSON turn events
PREDICTION_TOPIC = '/listener/head_pose'  # listener_head_ros/HeadPose, a model's output
AUDIO_TYPES = ('audio_common_msgs/msg/AudioData', 'audio_common_msgs/msg/AudioDataStamped')
# hri_msgs/LiveSpeech, the interlocutor's recognised speech: where ros4hri's asr_vosk publishes
# the speech of the one voice it does not identify (REP-155 /humans/voices/<id>/speech).
TRANSCRIPT_TOPIC = '/humans/voices/anonymous_speaker/speech'
TRANSCRIPT_LOCALE = 'en_US'  # LiveSpeech locale of the converted IEMOCAP results
