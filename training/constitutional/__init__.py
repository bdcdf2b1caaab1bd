"""Constitutional AI, supervised stage: critique-revise jobs over a policy's responses
(config, templates and the queueing service; the model work is ``training.runners.cai``)."""
