-- Notifications (issue #15): every delivery attempt of an operator
-- notification on every channel (webhook, e-mail, SMS), successful or not,
-- so that a dead channel and what it failed to deliver are on record.
CREATE TABLE notification_attempts (
    id INTEGER PRIMARY KEY,
    time TIMESTAMP NOT NULL,                    -- wall clock of the attempt
    channel TEXT NOT NULL,                      -- webhook | email | sms
    event TEXT NOT NULL,                        -- breaker_trip, halt, resume, ...
    severity TEXT NOT NULL,                     -- info | warning | critical
    event_key TEXT NOT NULL,                    -- the event's identity (audit id, ...)
    attempt BIGINT NOT NULL,                    -- 1, 2, ... for one event on one channel
    ok BOOLEAN NOT NULL,
    final BOOLEAN NOT NULL,                     -- no further attempt follows
    detail TEXT NOT NULL,                       -- the reply's status or the error
    payload TEXT NOT NULL                       -- JSON: what was sent
);
CREATE INDEX notification_attempts_time_idx ON notification_attempts (time);
CREATE INDEX notification_attempts_channel_idx ON notification_attempts (channel, id);
