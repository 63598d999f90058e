// The console's entry: language, sign-in and sign-out, and the navigation between its pages.
import { api, forgetToken, onUnauthenticated, saveToken, savedToken } from './api.js';
import { createClusterView } from './cluster-view.js';
import { byId } from './dom.js';
import { clearError, relabelErrors, showError } from './errors.js';
import { createHomesView } from './homes-view.js';
import { initialLanguage, onLanguageChange, setLanguage, storedLanguage } from './i18n.js';
import { createResizeView } from './resize-view.js';

const views = { cluster: createClusterView(), resize: createResizeView(), homes: createHomesView() };
const DEFAULT_VIEW = 'cluster';
let current;

/** The page named by the address (`#resize`), or the default one. */
const viewOfHash = () => {
  const name = location.hash.slice(1);
  return Object.hasOwn(views, name) ? name : DEFAULT_VIEW;
};

/** Shows `name` (or the sign-in form when no token is kept), starting and stopping the pages' polling. */
function route() {
  const signedIn = savedToken() !== null;
  const name = signedIn ? viewOfHash() : 'sign-in';
  byId('nav').hidden = !signedIn;
  byId('sign-out').hidden = !signedIn;
  for (const section of document.querySelectorAll('main > .view')) section.hidden = section.id !== `view-${name}`;
  for (const link of document.querySelectorAll('#nav a')) {
    if (link.dataset.view === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (current !== name) {
    views[current]?.hide();
    current = name;
    views[name]?.show();
  }
  if (name === 'sign-in') byId('sign-in-token').focus();
}

function signOut(reason) {
  forgetToken();
  for (const view of Object.values(views)) view.reset();
  const box = byId('sign-in-error');
  if (reason) showError(box, reason);
  else clearError(box);
  route();
}

/**
 * Checks the typed token with `GET /v1/admin/cluster` before keeping it: 200, or 409 (the token is
 * right but the node has no cluster), signs in; anything else (401: wrong token) is shown.
 */
async function signIn() {
  const input = byId('sign-in-token');
  const button = byId('sign-in-button');
  const box = byId('sign-in-error');
  const token = input.value.trim();
  clearError(box);
  if (token === '') {
    input.focus();
    return;
  }
  button.disabled = true;
  try {
    await api.cluster(token).catch((err) => {
      if (err.code !== 'failed_precondition') throw err;
    });
    saveToken(token);
    input.value = '';
    route();
  } catch (err) {
    showError(box, err);
  } finally {
    button.disabled = false;
  }
}

function start() {
  // The switch: one button per language, the current one pressed.
  const langButtons = byId('lang-switch').querySelectorAll('button[data-lang]');
  onLanguageChange((lang) => {
    for (const button of langButtons) button.setAttribute('aria-pressed', String(button.dataset.lang === lang));
    relabelErrors();
    for (const view of Object.values(views)) view.relabel();
  });
  setLanguage(initialLanguage(storedLanguage(), navigator.languages));
  for (const button of langButtons) button.addEventListener('click', () => setLanguage(button.dataset.lang));

  byId('sign-in-form').addEventListener('submit', (event) => {
    event.preventDefault();
    void signIn();
  });
  byId('sign-out').addEventListener('click', () => signOut());
  // The node refused the kept token (it changed, or the node restarted with another): sign in again.
  onUnauthenticated((err) => signOut(err));
  window.addEventListener('hashchange', route);
  route();
}

start();
