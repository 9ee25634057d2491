/**
 * Access on the job view (GET /jobs/{id}/view): the network's neurons as buttons
 * (access_network.js). The palette this browser chose is applied by views/heatmap.js itself.
 */

import { bindNetworkAccess } from "./access_network.js";

bindNetworkAccess(document.getElementById("network"));
