//! Logging to one physical line per event, whatever a logged value holds.

/// Log output that is one physical line per event, whatever the log sites wrote: the second
/// layer behind the field wrapper `Escaped`, for a site that forgot it.
///
/// Wraps a [`MakeWriter`](tracing_subscriber::fmt::MakeWriter) (such as `std::io::stderr`).
/// Each writer it makes collects one event and, when dropped, writes it to the inner writer in
/// one call with every CR, LF, ESC and other C0 and C1 control, DEL, U+2028/U+2029, bidi
/// control and other format character written as `\u{…}`, and a single `\n` at the end. The
/// fmt layer of `tracing-subscriber` formats an event into a buffer and writes it with one
/// `write_all`; collecting until drop keeps the guarantee even for a writer that receives an
/// event in several writes. Backslashes pass unchanged, so values escaped at the log site are
/// not escaped twice. ANSI colours are escaped too: use it with `with_ansi(false)`.
#[derive(Clone, Debug)]
pub(crate) struct OneLine<M>(pub(crate) M);

impl<'a, M: tracing_subscriber::fmt::MakeWriter<'a>> tracing_subscriber::fmt::MakeWriter<'a> for OneLine<M> {
    type Writer = keysmith::server::OneLineWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        keysmith::server::OneLineWriter::new(self.0.make_writer())
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        keysmith::server::OneLineWriter::new(self.0.make_writer_for(meta))
    }
}
