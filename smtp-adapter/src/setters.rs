//! Consuming setters, written once for every options struct of the
//! workspace (this crate's [`Options`](crate::Options), the pool's
//! configuration): `value.setting(x)` returns the value with `setting` set.

/// Writes consuming setters: for each `name(arg: Type) => field = value;`
/// line (its doc comment first), a `#[must_use] pub fn name(mut self, arg:
/// Type) -> Self` that sets `self.field = value` and returns `self`.
///
/// ```
/// #[derive(Default)]
/// pub struct Settings {
///     retries: u32,
///     name: Option<String>,
/// }
///
/// smtp_adapter::setters! { Settings;
///     /// How many times to try.
///     retries(n: u32) => retries = n;
///     /// The name to use.
///     name(name: impl Into<String>) => name = Some(name.into());
/// }
///
/// let s = Settings::default().retries(3).name("x");
/// assert_eq!((s.retries, s.name.as_deref()), (3, Some("x")));
/// ```
#[macro_export]
macro_rules! setters {
    ($ty:ty; $( $(#[$doc:meta])* $name:ident($arg:ident: $arg_ty:ty) => $field:ident = $value:expr; )*) => {
        impl $ty {
            $(
                $(#[$doc])*
                #[must_use]
                pub fn $name(mut self, $arg: $arg_ty) -> Self {
                    self.$field = $value;
                    self
                }
            )*
        }
    };
}
