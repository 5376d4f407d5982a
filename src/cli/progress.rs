//! Progress bars for commands that write many secrets (`import`, `apply`): on stderr, only
//! when stderr is a terminal (piped or redirected output carries no control codes), and only
//! for enough items to be worth one.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::backend::Backend;
use crate::error::Result;
use crate::ops::Api;
use crate::types::SetRequest;

/// Fewer items than this get no bar.
const MANY: usize = 10;

/// A bar of `len` steps labelled `what`; hidden unless stderr is a terminal and `len` is
/// at least [`MANY`].
pub(super) fn bar(len: usize, what: &str) -> ProgressBar {
    let shown = len >= MANY && std::io::stderr().is_terminal();
    let target = if shown {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(len as u64), target);
    bar.set_style(
        ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} ({eta})")
            .expect("the template is valid"),
    );
    bar.set_message(what.to_owned());
    bar
}

/// [`Api::set_many`] with progress: through the daemon one request per secret, each ticking
/// the bar; on the file one transaction (the bar jumps when it commits).
///
/// # Errors
/// The first failing write.
pub(super) fn set_many(
    b: &Backend,
    items: Vec<(String, SetRequest)>,
    bar: &ProgressBar,
) -> Result<usize> {
    let n = items.len();
    match b {
        Backend::Daemon(_) => {
            for (name, req) in items {
                b.set(&name, &req)?;
                bar.inc(1);
            }
        }
        Backend::Local(_) => {
            bar.set_message(format!("{} (one transaction)", bar.message()));
            b.set_many(items)?;
            bar.inc(n as u64);
        }
    }
    Ok(n)
}
