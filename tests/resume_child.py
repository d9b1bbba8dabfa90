"""The training script of tests/test_resume_kill.py, run as a process that is killed with
SIGKILL and rerun until it finishes (as a user reruns a crashed script).

    python resume_child.py OPTIMIZER THREADS SAVE_FREQ BACKUP_DIR OUT LOG

It logs to LOG, one event per line, flushed by os.write: ``S`` (training starts),
``R epoch step`` (resumed from a backup), ``B`` / ``E`` around every backup, ``D`` (fit
returned). OUT (.npz) receives the final weights and the History, written atomically.
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np

import fastnn
from fastnn.callbacks import BackupAndRestore, EarlyStopping, ReduceLROnPlateau
from fastnn.layers import BatchNormalization, Dense, Dropout

EPOCHS, BATCH = 5, 32


def data():
    r = np.random.default_rng(0)
    x = r.standard_normal((800, 24)).astype(np.float32)
    y = (x[:, :4].sum(1) > 0).astype(int) + 2 * (x[:, 4] * x[:, 5] > 0)
    return x, y


def model(optimizer):
    fastnn.set_random_seed(1)
    m = fastnn.Sequential([Dense(96, input_dim=24, activation="relu"), BatchNormalization(), Dropout(0.2),
                           Dense(96, activation="relu"), Dropout(0.1), Dense(4, activation="softmax")])
    opt = fastnn.optimizers.SGD(0.05, momentum=0.9) if optimizer == "sgd" else fastnn.optimizers.Adam(2e-3)
    m.compile(opt, "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def main(optimizer, threads, save_freq, backup_dir, out, log):
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def event(s):
        os.write(fd, (s + "\n").encode())

    class Logged(BackupAndRestore):
        def restore(self):
            r = super().restore()
            if r is not None:
                event(f"R {r['epoch']} {r['step']}")
            return r

        def save(self, epoch, step):
            event("B")
            super().save(epoch, step)
            event("E")

    fastnn.set_num_threads(threads)
    x, y = data()
    m = model(optimizer)
    save_freq = save_freq if save_freq == "epoch" else int(save_freq)
    callbacks = [EarlyStopping(monitor="val_loss", patience=100),
                 ReduceLROnPlateau(monitor="val_loss", patience=1, factor=0.7),
                 Logged(backup_dir, save_freq=save_freq)]
    event("S")
    h = m.fit(x, y, epochs=EPOCHS, batch_size=BATCH, seed=3, verbose=0, validation_split=0.2, callbacks=callbacks)
    event("D")
    tmp = out + ".part.npz"
    np.savez(tmp, *m.get_weights(), history=np.array(json.dumps(h.history)))
    os.replace(tmp, out)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), *sys.argv[3:])
