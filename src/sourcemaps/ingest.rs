//! Frames mapped before grouping (SPEC §10: events stored after the upload are grouped by
//! their mapped frames). Costs nothing for an event without JavaScript frames, and one
//! read of the project's state in memory for one of a project without uploaded files.

use super::event::SentEvent;
use super::mapping::{ShownFrame, is_javascript};
use super::{ArtifactSource, Mapper};
use crate::model::{Frame, NewEvent};

impl<S: ArtifactSource> Mapper<S> {
    /// Maps the kept frames of each of `events` that has JavaScript frames, when the
    /// project has uploaded files; other events are left as they are.
    pub(crate) async fn map_new_events(&self, project: i64, events: &mut [NewEvent]) {
        let mut stamp = None;
        for event in events.iter_mut().filter(|e| wants_mapping(e)) {
            if stamp.is_none() {
                stamp = Some(self.project_stamp(project).await);
            }
            if stamp == Some(None) {
                return;
            }
            let Some(raw) = event
                .raw
                .as_deref()
                .and_then(|r| std::str::from_utf8(r).ok())
            else {
                continue;
            };
            let sent = SentEvent::read(raw);
            let Some(raised) = self.map_event(project, &sent).await.into_iter().next() else {
                continue;
            };
            apply(&mut event.detail.stacktrace, &raised.frames);
        }
    }
}

/// Whether `event` has a JavaScript frame and its text to read the frames from.
fn wants_mapping(event: &NewEvent) -> bool {
    event.raw.is_some()
        && event
            .detail
            .stacktrace
            .iter()
            .any(|f| f.filename.as_deref().is_some_and(is_javascript))
}

/// Puts the mapped frames in place of the kept ones: the kept frames are the first ones
/// sent and the last (`model::event::kept_frames`), so the last goes with the last.
fn apply(kept: &mut [Frame], mapped: &[ShownFrame]) {
    let (Some(last_kept), Some(last_mapped)) =
        (kept.len().checked_sub(1), mapped.len().checked_sub(1))
    else {
        return;
    };
    for (i, frame) in kept.iter_mut().enumerate() {
        let from = if i == last_kept { last_mapped } else { i };
        let Some(shown) = mapped.get(from).filter(|s| s.mapped) else {
            continue;
        };
        frame.filename = shown.filename.clone();
        frame.function = shown.function.clone();
        frame.lineno = shown.lineno;
        frame.colno = shown.colno;
        frame.context_line = shown.context_line.clone();
        frame.in_app = Some(shown.in_app);
        // The SDK's module is the minified file's; grouping reads the original file.
        frame.module = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_frames_replace_the_kept_ones_the_last_with_the_last() {
        let sent = |n: i64| Frame {
            filename: Some("app.min.js".into()),
            lineno: Some(n),
            module: Some("app.min".into()),
            ..Frame::default()
        };
        let mut kept = vec![sent(1), sent(2)];
        let mapped = |n: i64, ok: bool| ShownFrame {
            filename: Some("src/a.js".into()),
            lineno: Some(n),
            mapped: ok,
            in_app: true,
            ..ShownFrame::default()
        };
        apply(
            &mut kept,
            &[mapped(10, true), mapped(20, true), mapped(30, true)],
        );
        assert_eq!((kept[0].lineno, kept[1].lineno), (Some(10), Some(30)));
        assert_eq!(kept[1].module, None);
        let mut kept = vec![sent(1)];
        apply(&mut kept, &[mapped(10, false)]);
        assert_eq!(kept[0].lineno, Some(1));
    }
}
