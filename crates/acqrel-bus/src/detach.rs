//! [`Detach`]: what takes a subscriber off its bus when its handle goes.

use std::fmt;

/// Takes one subscriber off its bus's list, once: on [`run`](Detach::run)
/// or on drop. The bus makes it (a closure holding the bus's shared state
/// and the subscriber's id), the subscriber's handle owns it.
pub(crate) struct Detach {
    remove: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl Detach {
    pub(crate) fn new(remove: impl FnOnce() + Send + Sync + 'static) -> Self {
        Detach {
            remove: Some(Box::new(remove)),
        }
    }

    /// Takes the subscriber off the list now (a second call does nothing).
    pub(crate) fn run(&mut self) {
        if let Some(remove) = self.remove.take() {
            remove();
        }
    }
}

impl Drop for Detach {
    fn drop(&mut self) {
        self.run();
    }
}

impl fmt::Debug for Detach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Detach")
            .field("attached", &self.remove.is_some())
            .finish()
    }
}
