// Starts the Portkey AI gateway that bench/install_peers.sh installs, listening on one host only.
//
// Its start script serves on every interface (`serve({fetch, port})`, no hostname) and does
// not export its app, so this launcher makes a listen() call without a host use
// PORTKEY_HOST (127.0.0.1 unless set) and then runs the script unchanged. Its arguments pass
// through: node bench/portkey_launch.mjs --port=8787 --headless
import net from "node:net";

const host = process.env.PORTKEY_HOST || "127.0.0.1";
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (port, hostname, ...rest) {
	if (typeof port === "number" && (hostname === undefined || typeof hostname === "function")) {
		return listen.call(this, port, host, ...(hostname === undefined ? rest : [hostname, ...rest]));
	}
	return listen.call(this, port, hostname, ...rest);
};

await import(
	new URL(
		"../.bench/peers/portkey/node_modules/@portkey-ai/gateway/build/start-server.js",
		import.meta.url,
	).href
);
