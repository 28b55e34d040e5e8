//! The controlling terminal's mode, changed for a while and put back when the guard drops:
//! raw for a serial console, without echo for a password.

use nix::sys::termios::{self, LocalFlags, SetArg, Termios};
use std::io::IsTerminal;

/// Puts standard input's terminal back as it was when dropped; does nothing when standard
/// input is not a terminal.
pub struct TerminalMode(Option<Termios>);

impl TerminalMode {
    /// Keys go straight through: no line editing, no echo, no signals from Ctrl-C.
    pub fn raw() -> TerminalMode {
        Self::change(termios::cfmakeraw)
    }

    /// Lines as usual, but what is typed is not shown.
    pub fn without_echo() -> TerminalMode {
        Self::change(|t| {
            t.local_flags.remove(LocalFlags::ECHO);
            t.local_flags.insert(LocalFlags::ECHONL);
        })
    }

    fn change(how: impl FnOnce(&mut Termios)) -> TerminalMode {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return TerminalMode(None);
        }
        let Ok(saved) = termios::tcgetattr(&stdin) else {
            return TerminalMode(None);
        };
        let mut changed = saved.clone();
        how(&mut changed);
        if termios::tcsetattr(&stdin, SetArg::TCSANOW, &changed).is_err() {
            return TerminalMode(None);
        }
        TerminalMode(Some(saved))
    }
}

impl Drop for TerminalMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, saved);
        }
    }
}
