//! Who is signed in, and the logout action: provided once by the frame, read by the
//! header and the pages.

use crate::api::auth::Logout;
use crate::error::AppError;
use crate::model::UserInfo;
use leptos::prelude::*;

/// The logout action and the signed-in user, shared by the header and the pages.
/// (The login and register actions live in their pages: only there, inside the routes,
/// can they pick up a form error that came back through the URL without JavaScript.)
#[derive(Clone, Copy)]
pub struct Auth {
    pub logout: ServerAction<Logout>,
    pub user: Resource<Result<Option<UserInfo>, AppError>>,
}

impl Auth {
    /// Creates the logout action and the user resource, which is fetched again after a
    /// logout and after every navigation (log-in and registration end in one).
    pub fn provide() -> Auth {
        let logout = ServerAction::<Logout>::new();
        let location = leptos_router::hooks::use_location();
        let user = Resource::new(
            move || (logout.version().get(), location.pathname.get()),
            |_| crate::api::auth::current_user(),
        );
        let auth = Auth { logout, user };
        provide_context(auth);
        auth
    }
}
