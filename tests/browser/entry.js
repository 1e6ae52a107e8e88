// What the browser launch test's page uses of BinderHub's client library: the class that
// talks to a BinderHub build API (tests/e2e/test_launch.py bundles this file).
import { BinderRepository } from "@jupyterhub/binderhub-client/client.js";

window.BinderRepository = BinderRepository;
