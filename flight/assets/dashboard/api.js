// The only module that talks to the server. Every request shape and every response shape of
// the REST API the dashboard relies on is written here, so that a change of the API is one
// change of this file.

const TOKENS_KEY = "healthai.dashboard.tokens";

/** An answer of the server that is not a success; `status` is the HTTP status (0 offline). */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

/** Raised when the session cannot be renewed: the user has to log in again. */
export class LoginRequired extends ApiError {
  constructor(message) {
    super(401, message || "Your session has ended; please log in again.");
    this.name = "LoginRequired";
  }
}

let onLoginRequired = () => {};

/** Registers what to do when the session is over (the app shows the login form). */
export function whenLoginRequired(callback) {
  onLoginRequired = callback;
}

function tokens() {
  try {
    return JSON.parse(sessionStorage.getItem(TOKENS_KEY) || "null");
  } catch {
    return null;
  }
}

function keepTokens(reply) {
  if (!reply || typeof reply.access_token !== "string") {
    throw new ApiError(500, "The server's login answer has no access token.");
  }
  sessionStorage.setItem(
    TOKENS_KEY,
    JSON.stringify({
      access: reply.access_token,
      refresh: reply.refresh_token || null,
      expiresAt: Date.now() + (Number(reply.expires_in) || 900) * 1000,
    }),
  );
}

export function isLoggedIn() {
  return tokens() !== null;
}

async function post(path, body, accessToken, extraHeaders = {}) {
  const headers = { "Content-Type": "application/json", Accept: "application/json", ...extraHeaders };
  if (accessToken) headers.Authorization = `Bearer ${accessToken}`;
  let response;
  try {
    response = await fetch(path, {
      method: "POST",
      headers,
      body: JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "The server cannot be reached.");
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!response.ok) throw new ApiError(response.status, errorMessage(data, response));
  return data;
}

// The error bodies of the API: {"error": {"message": …}}, {"error": "…"}, {"message": …}.
function errorMessage(data, response) {
  if (data && typeof data === "object") {
    const error = data.error;
    if (error && typeof error === "object" && error.message) return String(error.message);
    if (typeof error === "string") return error;
    if (data.message) return String(data.message);
  }
  if (typeof data === "string" && data.trim()) return data.trim().slice(0, 500);
  return `${response.status} ${response.statusText}`.trim();
}

/** Logs in; keeps the tokens for this browser tab only. */
export async function login(org, email, password) {
  // The server names a user ORG/EMAIL: the same email may exist in two organizations.
  const username = org ? `${org}/${email}` : email;
  const reply = await post("/api/v1/auth/login", { username, password });
  keepTokens(reply);
}

/** Renews the access token with the refresh token; false when that is not possible. */
export async function refresh() {
  const current = tokens();
  if (!current || !current.refresh) return false;
  try {
    keepTokens(await post("/api/v1/auth/refresh", { refresh_token: current.refresh }));
    return true;
  } catch {
    return false;
  }
}

/** Ends the session here and, as far as the server is reachable, there. */
export async function logout() {
  const current = tokens();
  sessionStorage.removeItem(TOKENS_KEY);
  if (current && current.refresh) {
    try {
      await post("/api/v1/auth/logout", { refresh_token: current.refresh });
    } catch {
      // The tokens are gone from this tab; an unreachable server changes nothing for the user.
    }
  }
}

// Only one refresh at a time: parallel queries that all got a 401 share it.
let refreshing = null;

function refreshOnce() {
  if (!refreshing) refreshing = refresh().finally(() => (refreshing = null));
  return refreshing;
}

// The dashboard refreshes every minute; an answer up to 30 s old is as good to it, and lets
// the server answer everyone watching from one computation (writes through this server
// show at once: they drop the kept answers).
const ACCEPT_RECENT = { "Cache-Control": "max-age=30" };

/**
 * Runs SQL with positional parameters ($1, $2, …) and returns the rows as objects keyed by
 * column name. On 401 it renews the session once; if that fails, the login form is shown.
 */
export async function query(sql, params = []) {
  const body = { sql, params, format: "json" };
  // Renewed shortly before it expires, so that a 401 is the exception rather than the rule.
  const soon = tokens();
  if (soon && soon.refresh && soon.expiresAt - Date.now() < 30000) await refreshOnce();
  for (let attempt = 0; ; attempt++) {
    const current = tokens();
    if (!current) {
      onLoginRequired();
      throw new LoginRequired();
    }
    try {
      return rowsOf(await post("/api/v1/query", body, current.access, ACCEPT_RECENT));
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 401) throw error;
      if (attempt === 0 && (await refreshOnce())) continue;
      sessionStorage.removeItem(TOKENS_KEY);
      onLoginRequired();
      throw new LoginRequired();
    }
  }
}

// {"columns": [{"name": …}], "rows": [[…], …]} becomes [{name: value, …}, …]; an array of
// objects (the JSON encoding of some servers) is taken as it is.
function rowsOf(data) {
  if (Array.isArray(data)) return data;
  if (!data || !Array.isArray(data.columns) || !Array.isArray(data.rows)) {
    throw new ApiError(500, "The query answer has neither columns and rows nor a list of rows.");
  }
  const names = data.columns.map((column) => column.name);
  return data.rows.map((row) => {
    const object = {};
    names.forEach((name, i) => (object[name] = row[i]));
    return object;
  });
}
