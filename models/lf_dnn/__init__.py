"""lf_dnn: MMSA's late-fusion DNN, the simplest baseline and the late-fusion reference curve."""
