// The example app: sign in with the local identity provider, then the reconnect prompt on the customer's
// connections (or on one: /connections/{connectionId}/reconnect, the link in a notification).
import "/reconnect-prompt/index.js";

const SESSION = "example-app.session";
const apiUrl = document.querySelector('meta[name="repair-api"]')?.getAttribute("content") ?? "";
const deepLink = location.pathname.match(/^\/connections\/([^/]+)\/reconnect$/);

/** @returns {{ customer: string, accessToken: string, expiresAt: number } | null} */
function session() {
  const stored = JSON.parse(sessionStorage.getItem(SESSION) ?? "null");
  return stored && stored.expiresAt > Date.now() ? stored : null;
}

function show() {
  const current = session();
  document.getElementById("sign-in").hidden = current !== null;
  document.getElementById("connections").hidden = current === null;
  document.getElementById("sign-out").hidden = current === null;
  const who = document.getElementById("who");
  who.hidden = current === null;
  who.textContent = current ? `Signed in as ${current.customer}` : "";
  if (!current) {
    document.getElementById("customer").focus();
    return;
  }
  const prompt = document.querySelector("reconnect-prompt");
  // The token source first, the API last: the prompt reads the connections once it has both.
  prompt.getToken = () => {
    const live = session();
    if (!live) throw new Error("signed out");
    return live.accessToken;
  };
  if (deepLink) {
    prompt.setAttribute("connection-id", decodeURIComponent(deepLink[1]));
    document.getElementById("all").hidden = false;
  }
  prompt.setAttribute("api-base-url", apiUrl);
}

document.getElementById("sign-in").addEventListener("submit", async (event) => {
  event.preventDefault();
  const customer = document.getElementById("customer").value.trim();
  const error = document.getElementById("sign-in-error");
  error.textContent = "";
  const response = await fetch("/token", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ customer }),
  });
  const body = await response.json();
  if (!response.ok) {
    error.textContent = body.message;
    return;
  }
  const expiresAt = Date.now() + (body.expiresIn - 60) * 1000;
  sessionStorage.setItem(SESSION, JSON.stringify({ customer, accessToken: body.accessToken, expiresAt }));
  show();
});

document.getElementById("sign-out").addEventListener("click", () => {
  sessionStorage.removeItem(SESSION);
  show();
});

document.addEventListener("session-expired", () => {
  sessionStorage.removeItem(SESSION);
  show();
});

show();
