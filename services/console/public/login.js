// Shows why the previous sign-in did not work and keeps where the user wanted to go.
const params = new URLSearchParams(location.search);
const messages = {
  bad_credentials: 'Unknown user or wrong password.',
  rate_limited: 'Too many failed attempts. Wait a minute and try again.',
  unavailable: 'Sign-in cannot be recorded right now. Try again in a moment.',
  busy: 'Too many sign-ins at once. Try again in a moment.',
};
const box = /** @type {HTMLElement} */ (document.getElementById('login-message'));
const error = params.get('error');
if (error || params.has('signed_out')) {
  box.textContent = error ? (messages[error] ?? 'Sign-in failed.') : 'You are signed out.';
  box.classList.toggle('notice-error', Boolean(error));
  box.hidden = false;
}
const next = params.get('next');
if (next && next.startsWith('/') && !next.startsWith('//')) /** @type {HTMLInputElement} */ (document.getElementById('next')).value = next;
